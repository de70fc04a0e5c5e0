"""UserInfo (OIDC Core §5.3): claims of the granted scopes, for a live access token."""

from __future__ import annotations

from typing import Any

from idp import errors
from idp.protocol.claims import release, user_claims
from idp.services.context import Context
from idp.store import grants as grant_store
from idp.store import tokens as token_store
from idp.store import users as user_store


async def userinfo(ctx: Context, access_token: str) -> dict[str, Any]:
    claims = await ctx.keys.verify_own(access_token, typ="at+jwt")
    now = ctx.now()
    if claims is None or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise errors.InvalidToken()
    async with ctx.db.transaction() as session:
        # Live state: a revoked token or a withdrawn grant stops working before the JWT expires.
        record = await token_store.get_access_token(session, str(claims.get("jti", "")))
        if record is None or record.revoked_at is not None or record.user_id is None:
            raise errors.InvalidToken()
        grant = await grant_store.get_grant(session, record.grant_id) if record.grant_id else None
        if grant is None or grant.revoked_at is not None:
            raise errors.InvalidToken()
        if "openid" not in record.scopes:
            raise errors.InsufficientScope("The access token was not granted the openid scope")
        user = await user_store.get_user(session, record.user_id)
        if user is None:
            raise errors.InvalidToken()
    available = user_claims(user.email, user.email_verified, user.profile, user.updated_at)
    body = release(available, list(record.scopes), grant.claims, "userinfo", record.claims)
    return {"sub": user.id, **body}
