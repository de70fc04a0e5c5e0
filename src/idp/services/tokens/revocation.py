"""Token revocation (RFC 7009)."""

from __future__ import annotations

from collections.abc import Mapping

from idp import errors
from idp.services.context import Context
from idp.services.tokens.client_auth import authenticated_client
from idp.services.tokens.state import find_token, presented_claims
from idp.store import tokens as token_store

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


async def revoke(ctx: Context, form: Mapping[str, str], repeated: set[str],
                 authorization: str | None) -> None:
    client = await authenticated_client(ctx, form, repeated, authorization)
    token = form.get("token")
    if not token:
        raise errors.InvalidRequest("token is missing")
    hint = form.get("token_type_hint")
    now = ctx.now()
    claims = await presented_claims(ctx, token)
    async with ctx.db.transaction() as session:
        found = await find_token(ctx, session, token, hint, claims)
        # RFC 7009 §2.2: an invalid or unknown token is answered with 200 all the same.
        if found is None:
            return
        # RFC 7009 §2.1: a client may revoke only the tokens issued to it.
        if found.client_id != client.client_id:
            raise errors.InvalidGrant("The token was issued to another client")
        if found.refresh is not None:
            # Revoking a refresh token ends the grant's access tokens too (RFC 7009 §2.1
            # SHOULD), and the refresh chain it belongs to.
            await token_store.revoke_by_grant(session, found.refresh.grant_id, now)
        else:
            await token_store.revoke_access_token(session, str(found.claims.get("jti")), now)
