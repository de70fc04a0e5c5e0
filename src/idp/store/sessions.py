"""Browser sessions (single sign-on)."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import SessionInfo
from idp.store.models import BrowserSession, SessionClient


async def find_live_session(session: AsyncSession, id_hash: str, now: int) -> SessionInfo | None:
    row = await session.get(BrowserSession, id_hash)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return SessionInfo(row.sid, row.user_id, row.auth_time, tuple(row.amr), row.acr,
                       row.last_used_at)


async def find_by_sid(session: AsyncSession, sid: str, now: int) -> SessionInfo | None:
    row = await session.scalar(select(BrowserSession).where(BrowserSession.sid == sid))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return SessionInfo(row.sid, row.user_id, row.auth_time, tuple(row.amr), row.acr,
                       row.last_used_at)


async def end_session(session: AsyncSession, id_hash: str, now: int) -> str | None:
    """End the session with this cookie digest; returns its user id, or None if it was not
    live."""
    return await session.scalar(
        update(BrowserSession)
        .where(BrowserSession.id_hash == id_hash, BrowserSession.ended_at.is_(None))
        .values(ended_at=now).returning(BrowserSession.user_id)
    )


# Last use is kept to this granularity (seconds): at most one UPDATE of a session in that
# time, and none on the token, introspection and UserInfo paths.
LAST_USE_GRANULARITY = 300


async def touch(session: AsyncSession, id_hash: str, now: int) -> None:
    """The session was used (an account-center page): its last use moves forward when the
    one kept is older than the granularity. The row is the one `find_live_session` loaded in
    this unit of work, so a fresh session costs no statement at all."""
    row = await session.get(BrowserSession, id_hash)
    if row is not None and (row.last_used_at or 0) <= now - LAST_USE_GRANULARITY:
        row.last_used_at = now


async def record_client(session: AsyncSession, info: SessionInfo, client_id: str, now: int
                        ) -> None:
    """Remember that the app got tokens in this session (once, even under concurrency); the
    session was used: its last use moves forward when the one `info` was read with is older
    than the granularity (no statement otherwise: this is on every code issued)."""
    sid, user_id = info.sid, info.user_id
    if info.last_used_at is None or info.last_used_at <= now - LAST_USE_GRANULARITY:
        await session.execute(
            update(BrowserSession)
            .where(BrowserSession.sid == sid, or_(BrowserSession.last_used_at.is_(None),
                                                  BrowserSession.last_used_at
                                                  <= now - LAST_USE_GRANULARITY))
            .values(last_used_at=now).execution_options(synchronize_session=False))
    values = {"sid": sid, "client_id": client_id, "user_id": user_id, "created_at": now}
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await session.execute(pg_insert(SessionClient).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        await session.execute(sqlite_insert(SessionClient).values(values).on_conflict_do_nothing())


async def clients_of_session(session: AsyncSession, sid: str) -> list[str]:
    rows = await session.scalars(select(SessionClient.client_id).where(SessionClient.sid == sid))
    return list(rows)


async def end_by_sid(session: AsyncSession, sid: str, now: int) -> str | None:
    """End the session with this `sid`; returns its user id, or None if it was not live."""
    row = await session.scalar(select(BrowserSession).where(BrowserSession.sid == sid))
    if row is None or row.ended_at is not None:
        return None
    row.ended_at = now
    return row.user_id


async def live_sids_of_user(session: AsyncSession, user_id: str, now: int) -> list[str]:
    rows = await session.scalars(
        select(BrowserSession.sid).where(
            BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None),
            BrowserSession.expires_at > now,
        )
    )
    return list(rows)
