"""Browser sessions (single sign-on)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import SessionInfo
from idp.store.models import BrowserSession, SessionClient
from idp.store.prepared import Connection, Prepared, dialect_of, inserting_rows

_SESSIONS = cast(Table, BrowserSession.__table__)
_SESSION_CLIENTS = cast(Table, SessionClient.__table__)
# Every sign-in writes these: statements built once, run as `Prepared` (idp.store.prepared).
_INSERT_SESSION = inserting_rows(_SESSIONS, after_pending=True, batched=True)
_TOUCH = Prepared(
    update(_SESSIONS)
    .where(_SESSIONS.c.sid == bindparam("b_sid"),
           or_(_SESSIONS.c.last_used_at.is_(None),
               _SESSIONS.c.last_used_at <= bindparam("b_before")))
    .values(last_used_at=bindparam("b_now")))


def _remember(insert: Any) -> Prepared:
    return Prepared(insert(_SESSION_CLIENTS).values(
        sid=bindparam("b_sid"), client_id=bindparam("b_client_id"),
        user_id=bindparam("b_user_id"), created_at=bindparam("b_now"),
    ).on_conflict_do_nothing(), after_pending=True, batched=True)


_REMEMBER = {"postgresql": _remember(postgresql_insert), "sqlite": _remember(sqlite_insert)}


async def add_session(connection: Connection, row: BrowserSession) -> None:
    """Write a new session (`row` stays outside the unit of work's objects)."""
    await _INSERT_SESSION.run(connection, {column.name: getattr(row, column.key)
                                           for column in _SESSIONS.c})


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


_END_SESSION = Prepared(
    update(BrowserSession)
    .where(BrowserSession.id_hash == bindparam("b_id_hash"), BrowserSession.ended_at.is_(None))
    .values(ended_at=bindparam("b_now")).returning(BrowserSession.user_id))


async def end_session(connection: Connection, id_hash: str, now: int) -> str | None:
    """End the session with this cookie digest; returns its user id, or None if it was not
    live. (A Core UPDATE: an ORM unit of work's loaded row is not changed by it.)"""
    row = await _END_SESSION.first(connection, {"b_id_hash": id_hash, "b_now": now})
    return None if row is None else str(row["user_id"])


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


async def record_client(connection: Connection, info: SessionInfo, client_id: str, now: int
                        ) -> None:
    """Remember that the app got tokens in this session (once, even under concurrency); the
    session was used: its last use moves forward when the one `info` was read with is older
    than the granularity (no statement otherwise: this is on every code issued)."""
    if info.last_used_at is None or info.last_used_at <= now - LAST_USE_GRANULARITY:
        await _TOUCH.run(connection, {"b_sid": info.sid, "b_now": now,
                                      "b_before": now - LAST_USE_GRANULARITY})
    await _REMEMBER[dialect_of(connection)].run(connection, {
        "b_sid": info.sid, "b_client_id": client_id, "b_user_id": info.user_id, "b_now": now})


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
