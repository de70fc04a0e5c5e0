"""The connection pool serves requests in the order they asked when every connection is out
(idp.store.pool): a later request never takes a returned connection ahead of one already
waiting, a waiter that gives up leaves no gap, and one cancelled just as a connection
reached it passes the connection on."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc, literal, select
from sqlalchemy.util import greenlet_spawn

from idp.services.context import Context
from idp.store.db import Database, create_engine
from idp.store.pool import FairQueue
from idp.store.prepared import Prepared

ONE = Prepared(select(literal(1).label("one")))


@pytest.fixture
async def one_connection(ctx: Context) -> Database:
    if ctx.db.dialect != "postgresql":
        pytest.skip("the fixed-size pool is PostgreSQL's (SQLite opens what it needs)")
    engine = create_engine(ctx.settings.database_url, pool_size=1)
    engine.sync_engine.pool._timeout = 1  # type: ignore[attr-defined]
    db = Database(engine)
    yield db
    await db.dispose()


async def test_a_returned_connection_goes_to_the_longest_waiter(
        one_connection: Database) -> None:
    db, order = one_connection, []
    release = asyncio.Event()

    async def use(name: str, hold: asyncio.Event | None = None) -> None:
        async with db.statements():
            order.append(name)
            if hold is not None:
                await hold.wait()

    holder = asyncio.create_task(use("holder", release))
    await asyncio.sleep(0.05)
    first = asyncio.create_task(use("first waiter"))
    await asyncio.sleep(0.05)  # it waits: the only connection is out
    # The connection comes back and, in the same turn of the loop, a new request asks:
    # with SQLAlchemy's own queue the newcomer took it and the waiter queued again behind.
    release.set()
    await asyncio.sleep(0)
    newcomer = asyncio.create_task(use("newcomer"))
    await asyncio.gather(holder, first, newcomer)
    assert order == ["holder", "first waiter", "newcomer"]


async def test_a_waiter_that_gives_up_leaves_the_line(one_connection: Database) -> None:
    db = one_connection
    release = asyncio.Event()

    async def hold() -> None:
        async with db.statements():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    # The pool's timeout: the waiter gets SQLAlchemy's error and is gone from the line.
    with pytest.raises(exc.TimeoutError):
        async with db.statements():
            pass
    cancelled = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # The connection came back to the pool and serves the next request at once.
    async with asyncio.timeout(1):
        async with db.statements() as connection:
            assert await ONE.first(connection, {}) == {"one": 1}
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_waiter_cancelled_as_the_connection_reaches_it_passes_it_on() -> None:
    """The queue itself (the pool runs it in SQLAlchemy's greenlet): a connection handed to
    a waiter whose request is cancelled before it runs goes on to the next waiter."""
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.create_task(greenlet_spawn(queue.get, True, None))
    second = asyncio.create_task(greenlet_spawn(queue.get, True, None))
    await asyncio.sleep(0.01)  # both wait: the queue is empty
    queue.put_nowait("the connection")  # handed to the first, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(1):
        assert await second == "the connection"
    assert queue.empty()
