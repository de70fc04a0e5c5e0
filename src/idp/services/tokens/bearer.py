"""Protected resources of our own (UserInfo, the Grant API): the bearer access token, judged
against live state, so a revoked token or a withdrawn grant stops working before its JWT
expires (RFC 6750 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.services.context import Context
from idp.store import tokens as token_store
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
    # One read: the token's record with its grant and its user.
    async with ctx.db.autocommit() as session:
        state = await token_store.access_token_state(session, str(claims.get("jti", "")))
    if state is None:
        raise errors.InvalidToken()
    record, grant, user = state
    if record.revoked_at is not None or record.user_id is None:
        raise errors.InvalidToken()
    if grant is None or grant.revoked_at is not None or user is None:
        raise errors.InvalidToken()
    return Bearer(claims, record, grant, user)
