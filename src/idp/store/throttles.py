"""Attempt counters, one row per key (security.md ATO-01 to ATO-03, PRIV-04)."""

from __future__ import annotations

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Throttle


async def count_in_window(session: AsyncSession, key: str, now: int, window: int, *,
                          cap: int | None = None, keep_from: int | None = None) -> int | None:
    """One more attempt for `key` in its current window, atomically; returns the new count, or
    None while the key is held back (nothing counted). The update applies only while the key is
    not held back: the row lock taken by the upsert makes a parallel attempt wait and then see
    the block the first one set. With `keep_from`, a count that reached it outlives its window;
    with `cap`, the attempt that reaches it holds the key back until its window ends."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    expired = Throttle.window_started_at <= now - window
    if keep_from is not None:
        expired = and_(expired, Throttle.failures < keep_from)
    values = insert(Throttle).values(key=key, failures=1, window_started_at=now,
                                     blocked_until=0)
    statement = values.on_conflict_do_update(
        index_elements=[Throttle.key],
        set_={
            "failures": case((expired, 1), else_=Throttle.failures + 1),
            "window_started_at": case((expired, now), else_=Throttle.window_started_at),
        },
        where=Throttle.blocked_until <= now,
    ).returning(Throttle.failures, Throttle.window_started_at)
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    failures, started = int(row[0]), int(row[1])
    if cap is not None and failures >= cap:
        await hold(session, key, started + window)
    return failures


async def held_until(session: AsyncSession, key: str) -> int | None:
    return await session.scalar(select(Throttle.blocked_until).where(Throttle.key == key))


async def hold(session: AsyncSession, key: str, until: int) -> None:
    await session.execute(update(Throttle).where(Throttle.key == key).values(blocked_until=until))


async def forget(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Throttle).where(Throttle.key == key))


async def give_back(session: AsyncSession, key: str) -> None:
    """One attempt fewer for `key`, never below zero."""
    await session.execute(
        update(Throttle)
        .where(Throttle.key == key, Throttle.failures > 0)
        .values(failures=Throttle.failures - 1))


async def purge(session: AsyncSession, now: int, *, window: int, keep_from: int,
                keep_runs_for: int) -> None:
    """Delete counters whose `window` and hold are both over, except a count that reached
    `keep_from`, which goes only `keep_runs_for` seconds after its window started."""
    await session.execute(delete(Throttle).where(
        Throttle.window_started_at <= now - window, Throttle.blocked_until <= now,
        or_(Throttle.failures < keep_from, Throttle.window_started_at <= now - keep_runs_for)))
