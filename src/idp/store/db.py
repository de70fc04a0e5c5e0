"""Engine and unit of work. Stores never commit; the service's unit of work does."""

from __future__ import annotations

import json
import re
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from idp.observability import metrics
from idp.store.batch import Batch
from idp.store.pool import FairAsyncQueuePool
from idp.store.prepared import Leased

READ_ONLY = "idp_read_only"
AUTOCOMMIT = "AUTOCOMMIT"
# A pooled connection idle longer than this is pinged before use; a busy one is not.
IDLE_PING_SECONDS = 10.0
# Engines whose pool feeds the pool gauges. A pool keeps its listeners through dispose(), so
# each further app on the same engine (tests, an embedding caller) would add another pair,
# and every checkout would then set the gauge once per pair.
_OBSERVED: weakref.WeakSet[Engine] = weakref.WeakSet()


# 19 digits in a row: possibly an integer beyond 64 bits, which orjson reads as a float
# (losing digits) instead of refusing it. An integer of 18 digits or fewer always fits.
_LONG_NUMBER = re.compile(r"\d{19}")


def json_column(text: str | bytes) -> Any:
    """A JSON column's value (the grant's claims, the account's profile: six of them on
    every UserInfo read) exactly as the standard library reads it, by orjson where that is
    sure to be the same value: not where a number may be beyond 64 bits, nor where orjson
    refuses what the standard library takes (a lone surrogate, 1e400)."""
    if isinstance(text, bytes):
        text = text.decode()
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def create_engine(url: str, pool_size: int = 10, enforce_foreign_keys: bool = True
                  ) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30},
                                     json_deserializer=json_column)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite recipe).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # Off only for migrations: SQLite rebuilds a table to alter it, and dropping the old
            # copy with enforcement on would cascade-delete every row that refers to it.
            cursor.execute(f"PRAGMA foreign_keys={'ON' if enforce_foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at the start of every transaction, so a read-then-write unit of
            # work cannot interleave with another writer (SQLite's answer to SELECT ... FOR UPDATE).
            # A unit of work declared read-only takes none: under WAL it reads a snapshot
            # beside the writer instead of queueing behind it.
            options = conn.get_execution_options()
            if options.get("isolation_level") == AUTOCOMMIT:
                return  # one statement, its own transaction (Database.autocommit)
            read_only = options.get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        url,
        # A fixed pool: connections beyond it would be opened and closed per checkout under
        # a burst (a PostgreSQL backend forked, authenticated and torn down per request);
        # waiting a moment for a pooled connection is far cheaper. Size it with
        # IDP_DB_POOL_SIZE (README: Performance and scale).
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        # No pre-ping on every checkout: on asyncpg it is three round trips (BEGIN, ";",
        # ROLLBACK) before each unit of work, a quarter of a token request's CPU. Only a
        # connection that sat idle is pinged (below); a connection that breaks under load
        # fails its one unit of work, and SQLAlchemy then invalidates the pool.
        pool_pre_ping=False,
        pool_recycle=1800,
        # The most recently returned connection goes out first: a worker keeps reusing the
        # few backends its load needs, whose caches are warm (round-robin over the whole
        # pool had every unit of work land on a colder one: LIFO took 8-12 % off the
        # database's CPU per sign-in request), and the rest sit idle (pinged before reuse).
        pool_use_lifo=True,
        # First come, first served when every connection is out (idp.store.pool): the
        # asyncio queue SQLAlchemy uses let later requests take a returned connection ahead
        # of those waiting, and the tail latency under load grew without bound.
        poolclass=FairAsyncQueuePool,
        json_deserializer=json_column,
        connect_args={"timeout": 3, "server_settings": {"statement_timeout": "10000"}},
    )
    _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's "pessimistic disconnect handling" for connections that sat unused in the
    pool for IDLE_PING_SECONDS: a database restart or an idle timeout in between is found
    before the connection is handed out, and the pool opens a fresh one instead."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError() from error


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # The same pool, with each statement committed as it runs: no BEGIN and COMMIT round
        # trips around a unit of work that is one statement.
        self._statement_engine = engine.execution_options(isolation_level=AUTOCOMMIT)
        self._statements = async_sessionmaker(
            self._statement_engine, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends cleanly, rolls back otherwise.
        `read_only` promises that it writes nothing (SQLite then takes no write lock)."""
        async with self._sessions() as session, session.begin():
            if read_only:
                await session.connection(execution_options={READ_ONLY: True})
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A unit of work of independent statements, each committed as it runs: for the hot
        paths whose work is one statement (one read that answers a request, or one insert).
        Nothing is rolled back when the block fails, so never use it for two writes that must
        stand or fall together."""
        async with self._statements() as session, session.begin():
            yield session

    def atomic(self) -> AbstractAsyncContextManager[AsyncConnection | Leased]:
        """A short unit of work of `Prepared` statements (idp.store.prepared): all of them
        or none. On PostgreSQL the transaction is asyncpg's own, on a leased connection, so a
        unit of work is BEGIN, its statements and COMMIT with nothing of SQLAlchemy's around
        them; on SQLite it is SQLAlchemy's, begun IMMEDIATE like every writing unit of
        work."""
        if self.dialect == "postgresql":
            return _Atomic(self._statement_engine)
        return _sqlite_atomic(self.engine)

    def statements(self) -> AbstractAsyncContextManager[AsyncConnection | Leased]:
        """A pooled connection for `Prepared` statements, each committed as it runs, with no
        ORM session around it: the lightest way to the database, for the hot reads that
        answer a request in one statement (UserInfo, introspection)."""
        # On PostgreSQL every statement goes to asyncpg directly, which runs it in its own
        # implicit transaction, on a connection leased from the pool with nothing of
        # SQLAlchemy's around it (`Leased`). SQLite begins every transaction IMMEDIATE (a
        # write lock), so its reads run on the autocommit engine. Neither is a
        # generator-based context manager: one cost 10-20 us a checkout, 2-3 % of a UserInfo
        # request's CPU.
        if self.dialect == "postgresql":
            return _Lease(self._statement_engine)
        return self._statement_engine.connect()

    def observe_pool(self) -> None:
        """Keep /metrics' pool figures for this serving process: the pool's size, and the
        connections checked out of it. Set, not counted up and down: each event writes the
        pool's own figure, so nothing can drift."""
        pool = self.engine.sync_engine.pool
        size = getattr(pool, "size", None)
        in_use = metrics.POOL_IN_USE.labels(self.dialect)
        if callable(size):
            metrics.POOL_SIZE.labels(self.dialect).set(size())
        engine = self.engine.sync_engine
        if not callable(getattr(pool, "checkedout", None)) or engine in _OBSERVED:
            return
        _OBSERVED.add(engine)

        # The engine's pool at the time of the event: dispose() puts a new pool in place and
        # hands it these listeners.
        @event.listens_for(pool, "checkout")
        def _out(*_args: Any) -> None:
            in_use.set(engine.pool.checkedout())  # type: ignore[attr-defined]

        @event.listens_for(pool, "checkin")
        def _in(*_args: Any) -> None:
            # Fired before the pool takes the connection back (its count still holds it).
            in_use.set(max(engine.pool.checkedout() - 1, 0))  # type: ignore[attr-defined]

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def _sqlite_atomic(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as connection, connection.begin():
        yield connection


class _Lease:
    """`async with _Lease(engine) as leased`: a connection of the engine's pool as `Leased`.

    Checked out in a greenlet, as `AsyncEngine.connect()` does, since the pool may have to
    wait for a connection, open one, or ping one that sat idle. Checked in without one when
    SQLAlchemy holds no transaction on it (it never begins one on a lease: its statements go
    to asyncpg, and the AUTOCOMMIT engine's `AsyncConnection`, if a rare branch asked for
    one, sends no BEGIN), so the check-in's reset has nothing to roll back and does no I/O;
    in a greenlet otherwise. A connection invalidated meanwhile is out of the pool already.
    Not a generator-based context manager: one cost 10-20 us a checkout."""

    __slots__ = ("engine", "leased")

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __aenter__(self) -> Leased:
        fairy = await greenlet_spawn(self.engine.sync_engine.pool.connect)
        self.leased = Leased(fairy, self.engine)
        return self.leased

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self._check_in()

    async def _check_in(self) -> None:
        leased = self.leased
        fairy, made = leased.fairy, leased.made
        adapted = fairy.dbapi_connection
        if adapted is None:
            return  # invalidated: closed and returned
        if leased.driver.is_closed():
            await leased.invalidate()  # broken under the block: not to be handed out again
        elif made is not None:
            await made.close()  # its Connection holds the lease and checks it in
        elif getattr(adapted, "_transaction", _UNKNOWN) is None:
            fairy.close()
        else:
            await greenlet_spawn(fairy.close)


_UNKNOWN = object()  # another SQLAlchemy's adapter: check in the way SQLAlchemy does


class _Atomic(_Lease):
    """`Database.atomic()` on PostgreSQL: asyncpg's transaction on a leased connection,
    committed when the block ends cleanly and rolled back otherwise. The writes the block
    held back (idp.store.batch) are sent just before the commit; when they fail, the
    transaction rolls back and their error is raised. A connection whose commit or rollback
    failed (cut off mid-statement, broken) is not handed out again."""

    __slots__ = ("transaction",)

    async def __aenter__(self) -> Leased:
        leased = await super().__aenter__()
        try:
            self.transaction = leased.driver.transaction()
            await self.transaction.start()
        except BaseException as error:
            await leased.invalidate(error if isinstance(error, Exception) else None)
            raise
        leased.batch = Batch()
        return leased

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        leased = self.leased
        unsent: BaseException | None = None
        if error is None:
            try:
                await leased.send_batch()
            except BaseException as failed:
                error = unsent = failed
        leased.batch = None
        try:
            if error is None:
                await self.transaction.commit()
            elif not leased.driver.is_closed():
                await self.transaction.rollback()
        except BaseException as failed:
            await leased.invalidate(failed if isinstance(failed, Exception) else None)
            # The block's own error goes on, unless the end was cancelled or fails itself.
            if error is None or not isinstance(failed, Exception):
                raise
        finally:
            await self._check_in()
        if unsent is not None:
            raise unsent
