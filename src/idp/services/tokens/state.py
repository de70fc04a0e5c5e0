"""Finding a presented token and judging it against live state: shared by revocation (RFC 7009),
introspection (RFC 7662) and our own protected resources (UserInfo, the Grant API).

An access token has no row (`idp.services.tokens.issuance`): it is live while its JWT has not
expired, its grant stands at the token epoch it was issued in, its client still exists, and
none of its revocation keys (its `jti`, its browser session, the authorization code it
descends from) is on the revocation list. A refresh token is a row of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idp.crypto.handles import digest
from idp.protocol.privacy import NO_STANDING, Standing
from idp.services.context import Context
from idp.store import tokens as token_store
from idp.store.models import Grant, RefreshToken, User
from idp.store.prepared import Connection

MAX_TOKEN_LENGTH = 16 * 1024


@dataclass(frozen=True)
class FoundToken:
    kind: str  # "access_token" | "refresh_token"
    client_id: str
    claims: dict[str, Any]  # the JWT's claims for access tokens, {} for refresh tokens
    refresh: RefreshToken | None  # the refresh token's row
    grant: Grant | None  # the grant it was issued under (None for a client's own token)
    user: User | None  # the end-user it is about (None for a client's own token)
    revoked: bool = False  # an access token named on the revocation list
    standing: Standing = NO_STANDING  # the account's privacy choices
    # The `sub` the grant's client knows the account by (pairwise clients: their own).
    subject: str | None = None

    @property
    def scopes(self) -> list[str]:
        if self.refresh is not None:
            return list(self.refresh.scopes)
        return str(self.claims.get("scope", "")).split()


async def presented_claims(ctx: Context, token: str) -> dict[str, Any] | None:
    """The claims of `token` if it is one of our access tokens (signature, `typ`, issuer).
    Checked before any unit of work opens: a key-ring reload needs a connection of its own,
    and a request must never hold one pooled connection while it waits for another."""
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        return None
    return await ctx.keys.verify_own(token, typ="at+jwt")


def grant_id_of(claims: dict[str, Any]) -> str | None:
    """The grant an end-user's access token was issued under (its `consent` claim)."""
    consent = claims.get("consent")
    grant_id = consent.get("grant_id") if isinstance(consent, dict) else None
    return grant_id if isinstance(grant_id, str) else None


async def access_token_state(ctx: Context, session: Connection,
                             claims: dict[str, Any]) -> FoundToken | None:
    """An access token's live state in one statement; None when what it hangs off (its grant
    or its client) is gone."""
    client_id = claims.get("client_id")
    if not isinstance(client_id, str):
        return None
    sid, chain = claims.get("sid"), claims.get("chain")
    keys = token_store.revocation_keys(str(claims.get("jti", "")),
                                       sid if isinstance(sid, str) else None,
                                       chain if isinstance(chain, str) else None)
    grant_id = grant_id_of(claims)
    if grant_id is not None:
        state = await token_store.user_token_state(session, grant_id, keys)
        if state is None:
            return None
        found, revoked = state
        return FoundToken("access_token", client_id, claims, None, found.grant, found.user,
                          revoked, found.standing,
                          ctx.subject_in(found.sector, found.user.id))
    exists, revoked = await token_store.client_token_state(session, client_id, keys)
    if not exists or claims.get("sub") != client_id:
        return None
    return FoundToken("access_token", client_id, claims, None, None, None, revoked)


async def find_token(ctx: Context, session: Connection, token: str,
                     hint: str | None, claims: dict[str, Any] | None) -> FoundToken | None:
    """The token's state, whatever `token_type_hint` says (RFC 7009 §2.1: the hint only
    speeds up the lookup; a wrong hint must not make the token unfindable). `claims` are
    `presented_claims(token)`. One statement reads it."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    order = ("refresh_token", "access_token") if hint == "refresh_token" else (
        "access_token", "refresh_token")
    for kind in order:
        if kind == "access_token" and claims is not None:
            found = await access_token_state(ctx, session, claims)
            if found is not None:
                return found
        elif kind == "refresh_token" and "." not in token:
            refresh = await token_store.refresh_token_state(session, digest(token))
            if refresh is not None:
                record, state = refresh
                return FoundToken(kind, record.client_id, {}, record, state.grant, state.user,
                                  False, state.standing,
                                  ctx.subject_in(state.sector, state.user.id))
    return None


def live_grant(found: FoundToken, now: int) -> Grant | bool | None:
    """False when the token is not active now; else its grant (None for client tokens)."""
    record = found.refresh
    if record is not None:
        if record.revoked_at is not None or record.expires_at <= now or (
                record.used_at is not None or record.idle_expires_at <= now):
            return False
        if found.user is None:
            return False  # the account is gone
        grant = found.grant
        if grant is None or grant.revoked_at is not None:
            return False
        return grant
    claims = found.claims
    exp = claims.get("exp")
    if found.revoked or not isinstance(exp, int) or exp <= now:
        return False
    grant, user = found.grant, found.user
    if grant is None:
        return None  # a client's own token: its client exists (access_token_state)
    if user is None or grant.revoked_at is not None or (
            claims.get("epoch") != grant.token_epoch or grant.client_id != found.client_id
            or claims.get("sub") != found.subject):
        return False
    return grant
