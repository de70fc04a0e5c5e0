"""Protected resources of our own (UserInfo, the Grant API): the bearer access token, judged
against live state, so a revoked token or a withdrawn grant stops working before its JWT
expires (RFC 6750 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp import errors
from idp.protocol.privacy import NO_STANDING, Standing
from idp.services.context import Context
from idp.services.tokens.dpop import BEARER, Presentation, check_presentation, consume
from idp.services.tokens.state import (
    FoundToken,
    access_token_state,
    grant_id_of,
    live_grant,
)
from idp.store.models import Grant, User


@dataclass(frozen=True)
class Bearer:
    claims: dict[str, Any]
    grant: Grant
    user: User
    standing: Standing = NO_STANDING  # the account's privacy choices

    @property
    def sub(self) -> str:
        """The `sub` the token's client knows the account by (checked against the grant's
        account by `live_grant`; a pairwise client's own, OIDC Core §8.1)."""
        return str(self.claims["sub"])

    @property
    def scopes(self) -> list[str]:
        return str(self.claims.get("scope", "")).split()


async def _live(ctx: Context, access_token: str, *, of_end_user: bool,
                presentation: Presentation = BEARER) -> tuple[dict[str, Any], FoundToken]:
    """One of our access tokens, live now, of an end-user or of a client itself (one read:
    its grant with its user, or its client, and whether it was revoked), presented as its
    DPoP binding requires (RFC 9449 §7); `invalid_token` for anything else. A DPoP proof is
    then spent (one more statement)."""
    claims = await ctx.keys.verify_own(access_token, typ="at+jwt")
    if claims is None or (grant_id_of(claims) is not None) != of_end_user:
        raise errors.InvalidToken()
    proof = check_presentation(ctx, presentation, access_token, claims)
    async with ctx.db.statements() as connection:
        found = await access_token_state(ctx, connection, claims)
    # live_grant: False when not live, the grant for an end-user's token, None for a client's.
    if found is None or live_grant(found, ctx.now()) is False:
        raise errors.InvalidToken()
    if proof is not None:
        await consume(ctx, proof)
    return claims, found


async def authenticate_bearer(ctx: Context, access_token: str,
                              presentation: Presentation = BEARER) -> Bearer:
    """An end-user's live access token, its grant and its user; `invalid_token` otherwise.
    `presentation`: how the request carried it (our resources other than UserInfo take
    bearer tokens only, so a DPoP-bound token is refused there)."""
    claims, found = await _live(ctx, access_token, of_end_user=True,
                                presentation=presentation)
    assert found.grant is not None and found.user is not None  # a live end-user token's
    return Bearer(claims, found.grant, found.user, found.standing)


async def authenticate_client_bearer(ctx: Context, access_token: str,
                                     scopes: tuple[str, ...]) -> dict[str, Any]:
    """A client's own live access token (client_credentials) granted one of `scopes`: its
    claims. `invalid_token` for anything else (unknown, expired, revoked, a customer's token,
    a client that is gone); `insufficient_scope` when the scope is missing (RFC 6750 §3.1)."""
    claims, _ = await _live(ctx, access_token, of_end_user=False)
    if not set(scopes) & set(str(claims.get("scope", "")).split()):
        raise errors.InsufficientScope(f"The access token was not granted {scopes[0]}")
    return claims
