"""Access and refresh token records: live-state checks and revocation by code, grant or session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AccessToken, Grant, RefreshToken, User


async def get_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.get(RefreshToken, token_hash)


# The hot paths' statements, built once: each request binds its values, and SQLAlchemy's
# compiled-statement cache key is computed once per statement instead of per request.
_ACCESS_TOKEN_STATE = (
    select(AccessToken, Grant, User)
    .outerjoin(Grant, Grant.id == AccessToken.grant_id)
    .outerjoin(User, User.id == AccessToken.user_id)
    .where(AccessToken.jti == bindparam("jti")))
_REFRESH_TOKEN_STATE = (
    select(RefreshToken, Grant, User)
    .outerjoin(Grant, Grant.id == RefreshToken.grant_id)
    .outerjoin(User, User.id == RefreshToken.user_id)
    .where(RefreshToken.token_hash == bindparam("token_hash")))
_LOCK_GRANT_OF_REFRESH_TOKEN = (
    select(Grant, User)
    .join(User, User.id == Grant.user_id)
    .where(Grant.id == select(RefreshToken.grant_id)
           .where(RefreshToken.token_hash == bindparam("token_hash")).scalar_subquery())
    .with_for_update(of=Grant))
_CLAIM_REFRESH_TOKEN = (
    update(RefreshToken)
    .where(
        # (Bind names differ from the column names: an UPDATE reserves those for SET.)
        RefreshToken.token_hash == bindparam("b_token_hash"),
        # RFC 6749 §10.4: bound to the client it was issued to.
        RefreshToken.client_id == bindparam("b_client_id"),
        RefreshToken.used_at.is_(None),
        RefreshToken.revoked_at.is_(None),
        RefreshToken.expires_at > bindparam("b_now"),
        RefreshToken.idle_expires_at > bindparam("b_now"),
    )
    .values(used_at=bindparam("b_now"))
    .returning(RefreshToken)
    # Nothing in the session to bring up to date: skip the ORM's evaluation of the criteria.
    .execution_options(synchronize_session=False))


async def access_token_state(session: AsyncSession, jti: str
                             ) -> tuple[AccessToken, Grant | None, User | None] | None:
    """An access token with its grant and its user, in one statement: what introspection and
    every bearer check judge it by."""
    row = (await session.execute(_ACCESS_TOKEN_STATE, {"jti": jti})).first()
    return (row[0], row[1], row[2]) if row else None


async def refresh_token_state(session: AsyncSession, token_hash: str
                              ) -> tuple[RefreshToken, Grant | None, User | None] | None:
    """A refresh token with its grant and its user, in one statement."""
    row = (await session.execute(_REFRESH_TOKEN_STATE, {"token_hash": token_hash})).first()
    return (row[0], row[1], row[2]) if row else None


async def lock_grant_of_refresh_token(session: AsyncSession, token_hash: str
                                      ) -> tuple[Grant, User] | None:
    """Take the row lock of the grant the refresh token belongs to (PostgreSQL; SQLite's
    BEGIN IMMEDIATE already serialises writers). Every refresh of a grant, and the reuse
    revocation a losing one runs, then goes one at a time. Without it, twenty parallel
    refreshes deadlocked: a loser keeps the lock of the token row it re-checked, while
    another loser that skipped that row already holds others of the grant's tokens.

    Returns the grant and its user, so the refresh that follows reads them under the lock
    and not again."""
    row = (await session.execute(_LOCK_GRANT_OF_REFRESH_TOKEN,
                                 {"token_hash": token_hash})).first()
    return (row[0], row[1]) if row else None


async def claim_refresh_token(session: AsyncSession, token_hash: str, client_id: str, now: int
                              ) -> RefreshToken | None:
    """Mark a live refresh token used; only one concurrent caller gets the row (REL-02)."""
    result = await session.execute(_CLAIM_REFRESH_TOKEN, {
        "b_token_hash": token_hash, "b_client_id": client_id, "b_now": now})
    return result.scalar_one_or_none()


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def _revoke(session: AsyncSession, now: int, access: list[Any] | None,
                  refresh: list[Any] | None) -> int:
    """Mark the live access and/or refresh tokens matching the criteria revoked; the one
    mechanism behind every revocation below.

    Refresh tokens are locked before access tokens, always. A refresh that loses the race
    for a token still holds that token's row lock (PostgreSQL keeps the lock of a row it
    re-checked and found no longer matching), and its reuse revocation then goes on to the
    grant's tokens; taking them in any other order than the claim's deadlocks against the
    next loser, as twenty parallel refreshes showed."""
    count = 0
    if refresh is not None:
        count += _count(await session.execute(
            update(RefreshToken).where(RefreshToken.revoked_at.is_(None), *refresh)
            .values(revoked_at=now)))
    if access is not None:
        count += _count(await session.execute(
            update(AccessToken).where(AccessToken.revoked_at.is_(None), *access)
            .values(revoked_at=now)))
    return count


async def revoke_by_code(session: AsyncSession, code_hash: str, now: int) -> int:
    """Every access and refresh token descended from one authorization code: the code's own
    tokens and the refresh chain it began (each link carries the code's digest)."""
    return await _revoke(session, now, [AccessToken.code_hash == code_hash],
                         [RefreshToken.code_hash == code_hash])


async def revoke_by_grant(session: AsyncSession, grant_id: str, now: int) -> int:
    """Every access and refresh token issued under the grant."""
    return await _revoke(session, now, [AccessToken.grant_id == grant_id],
                         [RefreshToken.grant_id == grant_id])


async def revoke_by_session(session: AsyncSession, sid: str, now: int) -> int:
    """What a browser session issued, except refresh tokens granted offline_access."""
    return await _revoke(session, now, [AccessToken.sid == sid],
                         [RefreshToken.sid == sid, RefreshToken.offline.is_(False)])


async def revoke_all_of_sessions(session: AsyncSession, sids: list[str], now: int) -> int:
    """Every token issued in these browser sessions, offline refresh tokens included: an
    upstream revocation withdraws everything that login led to (federation.md §9 req 27)."""
    if not sids:
        return 0
    return await _revoke(session, now, [AccessToken.sid.in_(sids)],
                         [RefreshToken.sid.in_(sids)])


async def revoke_access_token(session: AsyncSession, jti: str, now: int) -> None:
    await _revoke(session, now, [AccessToken.jti == jti], None)


async def revoke_refresh_tokens_of_user(session: AsyncSession, user_id: str, now: int) -> int:
    """Every refresh token of the account, offline ones included (ATO-11, RFC 9700 §4.14.2)."""
    return await _revoke(session, now, None, [RefreshToken.user_id == user_id])


async def revoke_all_of_user(session: AsyncSession, user_id: str, now: int) -> int:
    """Every access and refresh token of the account: it was deactivated (federation.md §9
    requirement 27, `account-delete` with no other way in)."""
    return await _revoke(session, now, [AccessToken.user_id == user_id],
                         [RefreshToken.user_id == user_id])
