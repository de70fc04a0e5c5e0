"""`private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
signs a short-lived JWT with a key whose public half it registered (`jwks`) or publishes
(`jwks_uri`).

security.md §0 item 7: the JWT is size-capped before parsing; the key is chosen from the
client's registered keys only (a `jwk`, `jku` or `x5u` header is never followed) and verifies
only an algorithm from its own allowlist, never `none` or HS*.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError, IntegrityError

from idp import errors
from idp.crypto.client_keys import (
    CLIENT_SIGNING_ALGS,
    ClientKey,
    ClientKeyError,
    select_key,
)
from idp.crypto.handles import digest
from idp.domain import ClientConfig
from idp.net.fetch import FetchError, fetch_json
from idp.protocol.client_assertion import (
    JWT_BEARER,
    MAX_ASSERTION_BYTES,
    AcceptedAssertion,
    check_claims,
)
from idp.services.context import Context
from idp.store.models import UsedAssertion

log = logging.getLogger("idp.client_auth")

# One successful authentication in this many also deletes expired jti records (maintenance
# does it too, when background tasks run).
PURGE_ONE_IN = 32


async def authenticate_with_assertion(ctx: Context, form: Mapping[str, str]) -> ClientConfig:
    obj = parse_assertion(form)
    header, claims = obj.headers(), _claims(obj.payload)
    client = await load_client(ctx, form, claims)
    await verify_signature(ctx, client, obj, header)
    audiences = (ctx.settings.issuer, ctx.settings.endpoint("/token"))
    accepted = check_claims(claims, client.client_id, audiences, ctx.now())
    await remember_jti(ctx, client.client_id, accepted)
    return client


def parse_assertion(form: Mapping[str, str]) -> jws.CompactSignature:
    if form.get("client_assertion_type") != JWT_BEARER:
        raise errors.InvalidClient("client_assertion_type is not supported")
    assertion = form.get("client_assertion", "")
    if len(assertion.encode("utf-8")) > MAX_ASSERTION_BYTES:
        raise errors.InvalidClient("client_assertion is too large")
    try:
        obj = jws.extract_compact(assertion.encode("utf-8"))
    except (JoseError, ValueError):
        raise errors.InvalidClient("client_assertion is not a signed JWT") from None
    header = obj.headers()
    if not isinstance(header, dict) or header.get("alg") not in CLIENT_SIGNING_ALGS:
        raise errors.InvalidClient("client_assertion alg is not accepted")
    return obj


def _claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (ValueError, RecursionError):
        claims = None
    if not isinstance(claims, dict):
        raise errors.InvalidClient("client_assertion payload is not a JSON object")
    return claims


async def load_client(ctx: Context, form: Mapping[str, str], claims: dict[str, Any]
                      ) -> ClientConfig:
    client_id = claims.get("sub")
    # RFC 7521 §4.2: a client_id sent alongside must name the same client.
    if not isinstance(client_id, str) or form.get("client_id") not in (None, client_id):
        raise errors.InvalidClient("client_id does not match the client_assertion sub")
    client = await ctx.clients.get(client_id)
    if client is None or client.token_endpoint_auth_method != "private_key_jwt":
        raise errors.InvalidClient("Client authentication failed")
    return client


async def verify_signature(ctx: Context, client: ClientConfig, obj: jws.CompactSignature,
                           header: dict[str, Any]) -> None:
    alg, kid = header["alg"], header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise errors.InvalidClient("client_assertion kid is not a string")
    key = select_key(await _client_keys(ctx, client, kid), kid, alg)
    if key is None:
        raise errors.InvalidClient("no registered key of the client matches the client_assertion")
    # RFC 7515 §4: unknown header parameters are ignored, unknown `crit` ones refused.
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    try:
        valid = jws.validate_compact(obj, key, registry=registry)
    except (JoseError, ValueError):
        valid = False
    if not valid:
        raise errors.InvalidClient("client_assertion signature is invalid")


async def _client_keys(ctx: Context, client: ClientConfig, kid: str | None
                       ) -> list[ClientKey]:
    try:
        if client.jwks is not None:
            return ctx.client_keys.registered(client.client_id, client.jwks)
        if client.jwks_uri is not None:
            return await ctx.client_keys.published(
                client.client_id, client.jwks_uri, kid, ctx.now(),
                lambda uri: fetch_json(ctx.http(), uri, allow_private=ctx.settings.dev_mode))
    except (ClientKeyError, FetchError) as exc:
        log.warning("keys of client %s unusable: %s", client.client_id, exc)
        raise errors.InvalidClient("the client's keys could not be obtained") from None
    raise errors.InvalidClient("the client has no registered keys")


async def remember_jti(ctx: Context, client_id: str, accepted: AcceptedAssertion) -> None:
    """RFC 7523 §3 item 7: a jti is accepted once. The primary key decides, so two concurrent
    uses of one assertion cannot both succeed."""
    key = digest(json.dumps([client_id, accepted.jti]))
    try:
        async with ctx.db.transaction() as session:
            session.add(UsedAssertion(key=key, expires_at=accepted.remember_until))
    except IntegrityError:
        raise errors.InvalidClient("client_assertion was already used") from None
    if secrets.randbelow(PURGE_ONE_IN) == 0:
        await purge_used_assertions(ctx)


async def purge_used_assertions(ctx: Context) -> None:
    try:
        async with ctx.db.transaction() as session:
            await session.execute(
                delete(UsedAssertion).where(UsedAssertion.expires_at <= ctx.now()))
    except DBAPIError as exc:
        # Concurrent purges may collide; the next one (or maintenance) finishes the job.
        log.info("purging used client assertions deferred: %s", type(exc).__name__)
