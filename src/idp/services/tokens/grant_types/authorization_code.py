"""RFC 6749 §4.1.3 / OIDC Core §3.1.3: redeeming an authorization code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp import errors
from idp.crypto.handles import digest
from idp.crypto.keys import KeyRing
from idp.domain import ClientConfig
from idp.protocol.pkce import verify_s256
from idp.services.context import Context
from idp.services.tokens.dpop import BOUND_KEY
from idp.services.tokens.grant_types import grant_handler, token_response
from idp.services.tokens.issuance import (
    Authentication,
    Subject,
    mint_access_token,
    mint_id_token,
    mint_refresh_token,
    wants_refresh_token,
)
from idp.store import codes as code_store
from idp.store import tokens as token_store
from idp.store.models import AuthorizationCode
from idp.store.prepared import Connection


@grant_handler("authorization_code")
async def authorization_code_grant(ctx: Context, client: ClientConfig, form: Mapping[str, str]
                                   ) -> dict[str, Any]:
    code = form.get("code")
    redirect_uri = form.get("redirect_uri")
    if not code or len(code) > 128:
        raise errors.InvalidRequest("code is missing")
    if not redirect_uri:
        raise errors.InvalidRequest("redirect_uri is missing")
    code_hash = digest(code)
    ring = await ctx.keys.ring()
    now = ctx.now()
    failure: errors.OAuthError
    # Claim, read the grant, insert the refresh token: prepared statements in one short
    # transaction (on PostgreSQL asyncpg's own), as a refresh is. A failure found after the
    # code was claimed still commits, so the code stays burnt (no second guess at the
    # verifier); then it is raised.
    async with ctx.db.atomic() as connection:
        row = await code_store.claim_code(connection, code_hash, client.client_id, now)
        if row is not None:
            try:
                return await _redeem(ctx, ring, connection, client, row, form, code_hash)
            except errors.OAuthError as exc:
                failure = exc
    if row is None:
        failure = await _refused(ctx, client, code_hash, now)
    raise failure


async def _refused(ctx: Context, client: ClientConfig, code_hash: str, now: int
                   ) -> errors.OAuthError:
    """Why a code could not be claimed. RFC 6749 §4.1.2, RFC 9700 §4.2.4: a second
    redemption revokes every token issued from this code (the refresh chain it began
    included), and nothing else of the grant or the browser session; committed before the
    error is returned."""
    async with ctx.db.transaction() as session:
        previous = await code_store.find_code(session, code_hash)
        if previous is not None and previous.used_at is not None and (
                previous.client_id == client.client_id):
            await token_store.revoke_by_code(session, code_hash, now)
            return errors.InvalidGrant("The authorization code was already used")
    return errors.InvalidGrant("The authorization code is invalid or expired")


async def _redeem(ctx: Context, ring: KeyRing, connection: Connection, client: ClientConfig,
                  row: AuthorizationCode, form: Mapping[str, str], code_hash: str
                  ) -> dict[str, Any]:
    # RFC 6749 §4.1.3: redirect_uri identical to the authorization request's.
    if form.get("redirect_uri") != row.redirect_uri:
        raise errors.InvalidGrant("redirect_uri does not match the authorization request")
    check_code_verifier(row.code_challenge, form.get("code_verifier"))
    # RFC 9449 §10: a code bound to a DPoP key is redeemed only with a proof of that key.
    if row.dpop_jkt is not None and BOUND_KEY.get() != row.dpop_jkt:
        raise errors.InvalidGrant("The authorization code is bound to a DPoP key (dpop_jkt): "
                                  "send a DPoP proof of that key")
    found = await token_store.grant_state(connection, row.grant_id)
    if found is None or found.grant.revoked_at is not None or found.user.id != row.user_id:
        raise errors.InvalidGrant("The grant behind this code was revoked")
    grant, user = found.grant, found.user
    auth = Authentication(row.auth_time, tuple(row.amr), row.acr, row.sid, row.nonce)
    subject = Subject(ctx.subject_of(client, user.id), user, grant, auth, found.standing)
    scopes = list(row.scopes)
    access_token = mint_access_token(ctx, ring, client, subject, scopes, row.claims, code_hash)
    body = token_response(access_token, ctx.settings.access_token_ttl, scopes)
    if wants_refresh_token(client, scopes):
        body["refresh_token"] = await mint_refresh_token(ctx, connection, client, subject,
                                                         scopes, row.claims, code_hash=code_hash)
    if "openid" in scopes:
        body["id_token"] = mint_id_token(ctx, ring, client, subject, scopes, row.claims,
                                         access_token)
    return body


def check_code_verifier(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            # RFC 9700 §4.8.2: PKCE downgrade — a verifier without a challenge is an attack.
            raise errors.InvalidGrant("code_verifier sent but no code_challenge was used")
        return
    if verifier is None:
        raise errors.InvalidGrant("code_verifier is missing")
    if not verify_s256(verifier, challenge):
        raise errors.InvalidGrant("code_verifier does not match the code_challenge")
