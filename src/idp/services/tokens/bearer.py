"""Protected resources of our own (UserInfo, the Grant API): the bearer access token, judged
against live state, so a revoked token or a withdrawn grant stops working before its JWT
expires (RFC 6750 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.services.context import Context
from idp.services.tokens.state import access_token_state, grant_id_of, live_grant
from idp.store.models import Grant, User


@dataclass(frozen=True)
class Bearer:
    claims: dict[str, Any]
    grant: Grant
    user: User

    @property
    def scopes(self) -> list[str]:
        return str(self.claims.get("scope", "")).split()


async def authenticate_bearer(ctx: Context, access_token: str) -> Bearer:
    """An end-user's live access token, its grant and its user; `invalid_token` otherwise."""
    claims = await ctx.keys.verify_own(access_token, typ="at+jwt")
    if claims is None or grant_id_of(claims) is None:
        raise errors.InvalidToken()  # not ours, or a client's own token: no end-user
    # One read: the token's grant with its user, and whether the token was revoked.
    async with ctx.db.statements() as connection:
        found = await access_token_state(connection, claims)
    grant = live_grant(found, ctx.now()) if found is not None else False
    if not isinstance(grant, Grant) or found is None or found.user is None:
        raise errors.InvalidToken()
    return Bearer(claims, grant, found.user)


async def authenticate_client_bearer(ctx: Context, access_token: str,
                                     scopes: tuple[str, ...]) -> dict[str, Any]:
    """A client's own live access token (client_credentials) granted one of `scopes`: its
    claims.
    `invalid_token` for anything else (unknown, expired, revoked, a customer's token, a
    client that is gone); `insufficient_scope` when the scope is missing (RFC 6750 §3.1)."""
    claims = await ctx.keys.verify_own(access_token, typ="at+jwt")
    if claims is None or grant_id_of(claims) is not None:
        raise errors.InvalidToken()
    async with ctx.db.statements() as connection:
        found = await access_token_state(connection, claims)
    if found is None or live_grant(found, ctx.now()) is not None:
        raise errors.InvalidToken()  # False: not live; a grant: not a client's own token
    if not set(scopes) & set(str(claims.get("scope", "")).split()):
        raise errors.InsufficientScope(f"The access token was not granted {scopes[0]}")
    return claims
