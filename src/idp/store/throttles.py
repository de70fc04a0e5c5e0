"""Attempt counters, one row per key (security.md ATO-01 to ATO-03, PRIV-04)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    Table,
    and_,
    bindparam,
    case,
    delete,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import cast as as_type
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Throttle
from idp.store.prepared import Connection, Prepared, dialect_of

# The counters are read and written on every password attempt: statements built once, run
# as `Prepared` (idp.store.prepared) in whatever unit of work the caller holds. Bind names
# differ from the column names: an UPDATE reserves those for SET.
_TABLE = cast(Table, Throttle.__table__)
# A count that reached `b_keep_from` outlives its window; callers that keep none pass NEVER.
NEVER = 2**31 - 1
_EXPIRED = and_(_TABLE.c.window_started_at <= bindparam("b_since"),
                _TABLE.c.failures < bindparam("b_keep_from"))


def doubling_delay(failures: Any, free: Any, most: Any, most_doubled: Any) -> Any:
    """Seconds to wait after `failures`, in SQL: none before `free` of them, then 1 s doubling
    with each failure up to `most` (`most_doubled`: `most` or 2**30, whichever is less; the
    shift goes no further)."""
    beyond = failures - free
    doubled = literal(1, BigInteger).bitwise_lshift(as_type(beyond, Integer))
    return case((beyond < 0, 0), (beyond >= 30, most_doubled), (doubled > most, most),
                else_=doubled)


def _upsert(insert: Any) -> Prepared:
    """One more attempt on a key (a new row, or its count in the current window), only while
    it is not held back; and the hold its new count calls for (`doubling_delay`, with
    `b_free` failures free), in the same statement: the count and its hold commit together,
    so a parallel attempt that waited on the row sees the hold (no transaction is needed
    around it)."""
    failures = case((_EXPIRED, 1), else_=_TABLE.c.failures + 1)
    delay = doubling_delay(failures, bindparam("b_free"), bindparam("b_most"),
                           bindparam("b_most_doubled"))
    return Prepared(
        insert(_TABLE).values(key=bindparam("b_key"), failures=1,
                              window_started_at=bindparam("b_now"),
                              blocked_until=bindparam("b_first_hold"))
        .on_conflict_do_update(
            index_elements=[_TABLE.c.key],
            set_={
                "failures": failures,
                "window_started_at": case((_EXPIRED, bindparam("b_now")),
                                          else_=_TABLE.c.window_started_at),
                "blocked_until": case((delay > 0, bindparam("b_now") + delay),
                                      else_=_TABLE.c.blocked_until),
            },
            where=_TABLE.c.blocked_until <= bindparam("b_now"),
        ).returning(_TABLE.c.failures, _TABLE.c.window_started_at))


_COUNT = {"postgresql": _upsert(postgresql_insert), "sqlite": _upsert(sqlite_insert)}
_HELD_UNTIL = Prepared(select(_TABLE.c.blocked_until).where(_TABLE.c.key == bindparam("b_key")))
_HOLD = Prepared(update(_TABLE).where(_TABLE.c.key == bindparam("b_key"))
                 .values(blocked_until=bindparam("b_until")))
_FORGET = Prepared(delete(_TABLE).where(_TABLE.c.key == bindparam("b_key")), batched=True)
_GIVE_BACK = Prepared(update(_TABLE).where(_TABLE.c.key == bindparam("b_key"),
                                           _TABLE.c.failures > 0)
                      .values(failures=_TABLE.c.failures - 1), batched=True)


async def count_in_window(connection: Connection, key: str, now: int, window: int, *,
                          cap: int | None = None, keep_from: int | None = None) -> int | None:
    """One more attempt for `key` in its current window, atomically; returns the new count, or
    None while the key is held back (nothing counted). The update applies only while the key is
    not held back: the row lock taken by the upsert makes a parallel attempt wait and then see
    the block the first one set. With `keep_from`, a count that reached it outlives its window;
    with `cap`, the attempt that reaches it holds the key back until its window ends."""
    row = await _counted(connection, key, now, window, keep_from, free=NEVER, most=0)
    if row is None:
        return None
    failures, started = int(row["failures"]), int(row["window_started_at"])
    if cap is not None and failures >= cap:
        await hold(connection, key, started + window)
    return failures


async def count_with_delay(connection: Connection, key: str, now: int, window: int, *,
                           free: int, most: int, keep_from: int | None = None) -> int | None:
    """`count_in_window` for a key whose failures past `free` wait a delay that doubles from
    1 s up to `most` seconds (`doubling_delay`): the hold is set by the same statement that
    counts the attempt. The new count, or None while the key is held back."""
    row = await _counted(connection, key, now, window, keep_from, free=free, most=most)
    return int(row["failures"]) if row is not None else None


async def _counted(connection: Connection, key: str, now: int, window: int,
                   keep_from: int | None, *, free: int, most: int) -> Any:
    first = doubling_seconds(1, free, most)
    return await _COUNT[dialect_of(connection)].first(connection, {
        "b_key": key, "b_now": now, "b_since": now - window,
        "b_first_hold": now + first if first else 0,
        "b_keep_from": NEVER if keep_from is None else keep_from, "b_free": free,
        "b_most": most, "b_most_doubled": min(most, 2**30)})


def doubling_seconds(failures: int, free: int, most: int) -> int:
    """`doubling_delay` in Python."""
    beyond = failures - free
    return 0 if beyond < 0 else min(most, 2 ** min(beyond, 30))


async def held_until(connection: Connection, key: str) -> int | None:
    row = await _HELD_UNTIL.first(connection, {"b_key": key})
    return int(row["blocked_until"]) if row is not None else None


async def hold(connection: Connection, key: str, until: int) -> None:
    await _HOLD.run(connection, {"b_key": key, "b_until": until})


async def forget(connection: Connection, key: str) -> None:
    await _FORGET.run(connection, {"b_key": key})


async def give_back(connection: Connection, key: str) -> None:
    """One attempt fewer for `key`, never below zero."""
    await _GIVE_BACK.run(connection, {"b_key": key})


async def purge(session: AsyncSession, now: int, *, window: int, keep_from: int,
                keep_runs_for: int) -> None:
    """Delete counters whose `window` and hold are both over, except a count that reached
    `keep_from`, which goes only `keep_runs_for` seconds after its window started."""
    await session.execute(delete(Throttle).where(
        Throttle.window_started_at <= now - window, Throttle.blocked_until <= now,
        or_(Throttle.failures < keep_from, Throttle.window_started_at <= now - keep_runs_for)))
