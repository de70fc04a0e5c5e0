"""Finding a presented token and judging it against live state: shared by revocation (RFC 7009)
and introspection (RFC 7662)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest
from idp.services.context import Context
from idp.store import tokens as token_store
from idp.store.models import AccessToken, Grant, RefreshToken, User

MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True)
class FoundToken:
    kind: str  # "access_token" | "refresh_token"
    record: AccessToken | RefreshToken
    claims: dict[str, Any]  # the JWT's claims for access tokens, {} for refresh tokens
    grant: Grant | None  # the grant it was issued under (None for a client's own token)
    user: User | None  # the end-user it is about (None for a client's own token)

    @property
    def client_id(self) -> str:
        return self.record.client_id


async def presented_claims(ctx: Context, token: str) -> dict[str, Any] | None:
    """The claims of `token` if it is one of our access tokens (signature, `typ`, issuer).
    Checked before any unit of work opens: a key-ring reload needs a connection of its own,
    and a request must never hold one pooled connection while it waits for another."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    return await ctx.keys.verify_own(token, typ="at+jwt")


async def find_token(session: AsyncSession, token: str, hint: str | None,
                     claims: dict[str, Any] | None) -> FoundToken | None:
    """The token's record, whatever `token_type_hint` says (RFC 7009 §2.1: the hint only
    speeds up the lookup; a wrong hint must not make the token unfindable). `claims` are
    `presented_claims(token)`. One statement reads the record with its grant and user."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    order = ("refresh_token", "access_token") if hint == "refresh_token" else (
        "access_token", "refresh_token")
    for kind in order:
        if kind == "access_token" and claims is not None:
            state = await token_store.access_token_state(session, str(claims.get("jti", "")))
            if state is not None:
                return FoundToken(kind, state[0], claims, state[1], state[2])
        elif kind == "refresh_token" and "." not in token:
            refresh = await token_store.refresh_token_state(session, digest(token))
            if refresh is not None:
                return FoundToken(kind, refresh[0], {}, refresh[1], refresh[2])
    return None


def live_grant(found: FoundToken, now: int) -> Grant | bool | None:
    """False when the token is not active now; else its grant (None for client tokens)."""
    record = found.record
    if record.revoked_at is not None or record.expires_at <= now:
        return False
    if isinstance(record, RefreshToken) and (
        record.used_at is not None or record.idle_expires_at <= now
    ):
        return False
    if record.user_id is not None and found.user is None:
        return False  # the account is gone
    if record.grant_id is None:
        return None
    grant = found.grant
    if grant is None or grant.revoked_at is not None:
        return False
    return grant
