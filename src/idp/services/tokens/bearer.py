"""Protected resources of our own (UserInfo, the Grant API): the bearer access token, judged
against live state, so a revoked token or a withdrawn grant stops working before its JWT
expires (RFC 6750 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.services.context import Context
from idp.store import grants as grant_store
from idp.store import tokens as token_store
from idp.store import users as user_store
from idp.store.models import AccessToken, Grant, User


@dataclass(frozen=True)
class Bearer:
    claims: dict[str, Any]
    record: AccessToken
    grant: Grant
    user: User


async def authenticate_bearer(ctx: Context, access_token: str) -> Bearer:
    """An end-user's live access token, its grant and its user; `invalid_token` otherwise."""
    claims = await ctx.keys.verify_own(access_token, typ="at+jwt")
    now = ctx.now()
    if claims is None or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise errors.InvalidToken()
    async with ctx.db.transaction(read_only=True) as session:
        record = await token_store.get_access_token(session, str(claims.get("jti", "")))
        if record is None or record.revoked_at is not None or record.user_id is None:
            raise errors.InvalidToken()
        grant = await grant_store.get_grant(session, record.grant_id) if record.grant_id else None
        if grant is None or grant.revoked_at is not None:
            raise errors.InvalidToken()
        user = await user_store.get_user(session, record.user_id)
        if user is None:
            raise errors.InvalidToken()
    return Bearer(claims, record, grant, user)
