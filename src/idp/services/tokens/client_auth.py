"""Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core §9)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import unquote_plus

from idp import errors
from idp.crypto.handles import digest, digest_matches
from idp.domain import ClientConfig
from idp.services.context import Context
from idp.services.tokens.client_assertion import authenticate_with_assertion

# Compared against when the client is unknown, so the answer takes the same time.
_DUMMY_DIGEST = digest("no client has this secret")


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        # ValueError: non-ASCII octets in the header (b64decode refuses them).
        raise errors.InvalidClient("Malformed Basic authorization header") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise errors.InvalidClient("Malformed Basic authorization header")
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(ctx: Context, form: Mapping[str, str], authorization: str | None
                              ) -> ClientConfig:
    basic = parse_basic(authorization)
    if sum((basic is not None, "client_secret" in form, "client_assertion" in form)) > 1:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        raise errors.InvalidRequest("More than one client authentication method was used")
    if basic is not None:
        client_id, secret, method = basic[0], basic[1], "client_secret_basic"
        if form.get("client_id") not in (None, client_id):
            raise errors.InvalidRequest("client_id does not match the authenticated client")
    elif "client_secret" in form:
        client_id, secret, method = form.get("client_id", ""), form["client_secret"], (
            "client_secret_post"
        )
    elif "client_assertion" in form:
        return await authenticate_with_assertion(ctx, form)
    else:
        client_id, secret, method = form.get("client_id", ""), None, "none"

    client = await ctx.clients.get(client_id)
    if method == "none":
        if client is None or client.token_endpoint_auth_method != "none":
            raise errors.InvalidClient("Client authentication failed")
        return client
    matches = _secret_matches(secret, client)
    if client is not None and not matches:
        # The cached registration may predate a new secret: the database decides.
        client = await ctx.clients.get(client_id, fresh=True)
        matches = _secret_matches(secret, client)
    if client is None or not matches or client.token_endpoint_auth_method != method:
        raise errors.InvalidClient("Client authentication failed")
    return client


def _secret_matches(secret: str | None, client: ClientConfig | None) -> bool:
    """Constant-time; an unknown client is compared against a dummy digest, so the answer
    takes the same time."""
    stored = client.secret_hash if client and client.secret_hash else _DUMMY_DIGEST
    return digest_matches(secret or "", stored) and client is not None


async def authenticated_client(ctx: Context, form: Mapping[str, str], repeated: set[str],
                               authorization: str | None) -> ClientConfig:
    """The common start of the token, revocation and introspection endpoints."""
    if repeated:
        # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        raise errors.InvalidRequest(f"parameter {sorted(repeated)[0]} is repeated")
    return await authenticate_client(ctx, form, authorization)
