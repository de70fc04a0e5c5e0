"""The hottest paths' statements, sent to the driver directly on PostgreSQL.

A Core statement through SQLAlchemy's execution layer (cache-key lookup, execution context,
result metadata, the greenlet hop into the adapter and back) cost a third of a UserInfo
request's CPU beside the statement itself, and SQLAlchemy's session and connection layers
were over a quarter of a rotating refresh. `Prepared` compiles its statement once per dialect
and, on a connection to PostgreSQL (`Leased` from `Database.statements()` and
`Database.atomic()`, or an `AsyncConnection`), hands the SQL and its positional values
straight to asyncpg, which prepares it once per connection. Values go through the bind
processors, and columns through the result processors, SQLAlchemy would apply (asyncpg's
JSON codec is SQLAlchemy's own, set on every pooled connection). Anything else (SQLite)
runs the statement the ordinary way, so both paths answer alike and the suite runs each on
its database. `Database.atomic()` gives such statements a transaction.

In an ORM unit of work on PostgreSQL (`Database.transaction()`), a statement goes to asyncpg
on the session's own connection, inside the session's transaction (begun as SQLAlchemy's
adapter begins it when the unit of work opens with such a statement). It sees, and is rolled
back with, everything else of the unit of work, as through `session.execute` with the
sessions' `autoflush=False`: objects added to the session and not yet flushed are not seen by
it (unless `after_pending`), and the objects the session holds are not changed by it (a
`Prepared` statement is a Core statement, which the ORM would not synchronise either). The
server's errors are raised as SQLAlchemy raises them (`IntegrityError` for a constraint), so
callers catch the same exceptions either way. The ORM's execution layers had been more than
half of a password sign-in's own CPU beside the hash.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Label, Table, bindparam, exc, insert
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.base import manager_of_class as instance_state_manager
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import greenlet_spawn

from idp.store.batch import PLACEHOLDER, Batch, can_wait, tables_of

Processor = Callable[[Any], Any]
M = TypeVar("M")


class Leased:
    """A pooled PostgreSQL connection held with none of SQLAlchemy's `Connection` and
    `AsyncConnection` around it (`Database.statements()`, `Database.atomic()`): `Prepared`
    statements go to asyncpg on it directly.

    Checking a connection out and in through `AsyncEngine.connect()` cost 53 us of CPU (two
    greenlets, a `Connection`, and a task for the shielded close); the pool's own checkout,
    in one greenlet, and check-in cost 21 us. Leasing took 14 % off a UserInfo request's
    server CPU under load (README, Performance). The pool
    is SQLAlchemy's, with its events (the idle ping, the gauges), its fair queue
    (idp.store.pool) and its invalidation, so these connections are counted and sized with
    every other. A rare branch that needs SQLAlchemy's execution (the ORM, a Core statement
    that is not `Prepared`) gets an `AsyncConnection` on the same connection, made when it
    first asks (`sqlalchemy`)."""

    __slots__ = ("batch", "dialect", "driver", "engine", "fairy", "made")

    def __init__(self, fairy: PoolProxiedConnection, engine: AsyncEngine) -> None:
        # `engine`: the AUTOCOMMIT engine, so SQLAlchemy itself never begins a transaction on
        # the connection (asyncpg's own, if any, is the unit of work's).
        self.fairy, self.engine, self.dialect = fairy, engine, engine.dialect
        self.driver: Any = fairy.driver_connection  # asyncpg's connection
        self.made: AsyncConnection | None = None
        # The writes held back, in `Database.atomic()`'s unit of work (idp.store.batch).
        self.batch: Batch | None = None

    async def sqlalchemy(self) -> AsyncConnection:
        """An `AsyncConnection` on this very connection (closing it checks the connection
        in, which ends the lease). The writes held back are sent first: SQLAlchemy's
        statements cannot tell which tables they read."""
        await self.send_batch()
        if self.made is None:
            sync = await greenlet_spawn(SyncConnection, self.engine.sync_engine, self.fairy)
            self.made = AsyncConnection(self.engine, sync)
        return self.made

    async def send_batch(self) -> None:
        """Send the writes held back (idp.store.batch), as one statement."""
        if self.batch:
            sql, values = self.batch.take()
            await _on_asyncpg(_Target(self, self.driver, False), "execute", sql, values)

    async def invalidate(self, exception: Exception | None = None) -> None:
        """Closed and out of the pool, as `AsyncConnection.invalidate`: returned already."""
        await greenlet_spawn(self.fairy.invalidate, exception)


# What a store function may run its statements on: the ORM unit of work it is part of, a
# bare connection (SQLite's `Database.atomic()` and `Database.statements()`), or a leased
# one (PostgreSQL's). `Prepared` statements take them all; SQLAlchemy's own execution on a
# leased one goes through `Leased.sqlalchemy()` (as `orm_session` does).
Connection = AsyncSession | AsyncConnection | Leased


class _Compiled:
    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ())
        # Whether it may wait in a unit of work's batch (idp.store.batch), its values taking
        # the places of its placeholders one for one.
        self.waits = can_wait(self.sql) and len(set(PLACEHOLDER.findall(self.sql))) == len(
            self.order) == max(map(int, PLACEHOLDER.findall(self.sql)), default=0)
        # Values the statement carries itself (a LIMIT, a literal), by bind name.
        self.defaults = dict(compiled.params)
        self.binds: tuple[Processor | None, ...] = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.order)
        # A SELECT's columns, or an INSERT's or UPDATE's RETURNING ones.
        returned = (statement.selected_columns if hasattr(statement, "selected_columns")
                    else statement.exported_columns)
        self.columns: tuple[tuple[str, Processor | None], ...] = tuple(
            (str(column.key),
             column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in returned)

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        merged = {**self.defaults, **params}
        return [merged[name] if process is None else process(merged[name])
                for name, process in zip(self.order, self.binds, strict=True)]


class Prepared:
    """`await statement.first(connection, params)`: the first row as a mapping, or None;
    `await statement.all(connection, params)`: every row; `await statement.run(connection,
    params)` for a statement that returns nothing.

    `after_pending`: in an ORM unit of work, the objects added to it or changed and not yet
    written are written first (an INSERT whose row refers to an account or a grant the same
    unit of work has just added, which the ORM would have ordered before it).

    `batched`: a write that may wait to be sent with the unit of work's others, as one
    statement (idp.store.batch says what such a write must be, and when it is sent)."""

    def __init__(self, statement: Executable, *, after_pending: bool = False,
                 batched: bool = False) -> None:
        self.statement: Any = statement
        self.after_pending = after_pending
        self.batched = batched
        # What a statement must not pass in a unit of work's batch (None: everything).
        self.tables = tables_of(statement)
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    async def first(self, connection: Connection,
                    params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        target = await _direct(connection)
        if target is not None:
            compiled = self._for(target.connection.dialect)
            await _after_batch(connection, self.tables)
            record = await _on_asyncpg(target, "fetchrow", compiled.sql,
                                       compiled.values(params))
            if record is None:
                return None
            return {name: (process(value) if process is not None else value)
                    for (name, process), value in zip(compiled.columns, record.values(),
                                                      strict=True)}
        assert not isinstance(connection, Leased)  # leased on PostgreSQL alone
        row = (await connection.execute(self.statement, params)).first()
        return cast(Mapping[str, Any], row._mapping) if row is not None else None

    async def all(self, connection: Connection,
                  params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Every row, as mappings."""
        target = await _direct(connection)
        if target is not None:
            compiled = self._for(target.connection.dialect)
            await _after_batch(connection, self.tables)
            records = await _on_asyncpg(target, "fetch", compiled.sql, compiled.values(params))
            return [{name: (process(value) if process is not None else value)
                     for (name, process), value in zip(compiled.columns, record.values(),
                                                       strict=True)}
                    for record in records]
        assert not isinstance(connection, Leased)
        result = await connection.execute(self.statement, params)
        return [cast(Mapping[str, Any], row._mapping) for row in result]

    async def run(self, connection: Connection,
                  params: Mapping[str, Any]) -> None:
        if self.after_pending and isinstance(connection, AsyncSession) and (
                connection.new or connection.dirty or connection.deleted):
            await connection.flush()
        target = await _direct(connection)
        if target is not None:
            compiled = self._for(target.connection.dialect)
            if isinstance(connection, Leased) and connection.batch is not None and \
                    self.batched and compiled.waits and self.tables:
                if connection.batch.must_send_before(self.tables):
                    await connection.send_batch()
                connection.batch.add(compiled.sql, compiled.values(params), self.tables)
                return
            await _after_batch(connection, self.tables)
            await _on_asyncpg(target, "execute", compiled.sql, compiled.values(params))
            return
        assert not isinstance(connection, Leased)
        await connection.execute(self.statement, params)


@dataclass(frozen=True)
class _Target:
    """Where a statement goes to asyncpg: the pooled connection, its asyncpg connection, and
    whether errors are raised as SQLAlchemy's (for an ORM unit of work's callers)."""

    connection: AsyncConnection | Leased
    driver: Any
    as_sqlalchemy: bool


# Where a session's unit of work keeps its `_Target`, with the transaction it belongs to (a
# session that begins another after a commit has another connection).
_SESSION_TARGET = "idp.prepared.target"


async def _direct(connection: Connection) -> _Target | None:
    """Where to send a statement to asyncpg, or None for the ordinary way (SQLite)."""
    if isinstance(connection, Leased):
        # Made per statement: kept on the lease it would be a reference cycle per request.
        return _Target(connection, connection.driver, False)
    if isinstance(connection, AsyncConnection):
        if connection.dialect.driver != "asyncpg":
            return None
        return _Target(connection, await driver_of(connection), False)
    bind = connection.bind
    if bind is None or bind.dialect.driver != "asyncpg":
        return None
    transaction = connection.sync_session.get_transaction()
    kept = connection.info.get(_SESSION_TARGET)
    if kept is not None and transaction is not None and kept[0] is transaction:
        return cast(_Target, kept[1])
    own = await connection.connection()  # begins the session's transaction if need be
    adapted = (await own.get_raw_connection()).dbapi_connection
    # SQLAlchemy's asyncpg adapter sends BEGIN with the unit of work's first statement; a
    # statement sent past it before then would commit on its own. Begun here, as the
    # adapter itself would, when the unit of work opens with one of these statements.
    if getattr(adapted, "_transaction", None) is None:
        start = getattr(adapted, "_start_transaction", None)
        if start is None:
            return None  # another SQLAlchemy: the ordinary way, always correct
        await start()
        if getattr(adapted, "_transaction", None) is None:
            return None
    target = _Target(own, await driver_of(own), True)
    connection.info[_SESSION_TARGET] = (connection.sync_session.get_transaction(), target)
    return target


async def driver_of(connection: AsyncConnection) -> Any:
    """The asyncpg connection under a checked-out one: read off it while it is live (no
    round trip through SQLAlchemy's greenlet), through SQLAlchemy when it must reconnect."""
    pooled = connection.sync_connection
    if pooled is not None and not pooled.closed and not pooled.invalidated:
        driver = pooled.connection.driver_connection
    else:
        driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # checked out: the pool hands out live connections
    return driver


async def _after_batch(connection: Connection, tables: frozenset[str] | None) -> None:
    """Before a statement on `tables`, the writes held back on them are sent."""
    if isinstance(connection, Leased) and connection.batch is not None and \
            connection.batch.must_send_before(tables):
        await connection.send_batch()


async def _on_asyncpg(target: _Target, method: str, sql: str, values: list[Any]) -> Any:
    try:
        return await getattr(target.driver, method)(sql, *values)
    except BaseException as error:
        if not _answered_by_the_server(error):
            # Broken, or cut off mid-statement (a cancelled request): the pool must not
            # hand this connection out again, as SQLAlchemy does for its own statements.
            # (A closed one also fails its reset at check-in; one cut off mid-statement
            # may not, so this is said outright.)
            await target.connection.invalidate(
                error if isinstance(error, Exception) else None)
        elif target.as_sqlalchemy and isinstance(error, Exception):
            raise _as_sqlalchemy(error, sql, values) from error
        raise


def _as_sqlalchemy(error: Exception, sql: str, values: list[Any]) -> Exception:
    """The server's error as SQLAlchemy raises it through its asyncpg dialect."""
    kind: type[exc.DBAPIError] = (
        exc.IntegrityError if isinstance(error, asyncpg.IntegrityConstraintViolationError)
        else exc.ProgrammingError if isinstance(error, asyncpg.SyntaxOrAccessError)
        else exc.InternalError if isinstance(error, asyncpg.InternalServerError)
        else exc.DBAPIError)
    return kind(sql, values, error)


def _answered_by_the_server(error: BaseException) -> bool:
    """An error the server reported about the statement (a timeout, a constraint): the
    connection itself is fine."""
    return isinstance(error, asyncpg.PostgresError) and not isinstance(
        error, asyncpg.PostgresConnectionError)


@asynccontextmanager
async def orm_session(connection: Connection) -> AsyncIterator[AsyncSession]:
    """The ORM for a rare branch of a unit of work of `Prepared` statements: a session on the
    same connection, inside the same transaction, flushed when the block ends (a session
    passed in is used as it is). The common path pays nothing for it: the ORM session's
    begin, commit and close had cost the password sign-in's second unit of work about
    0.15 ms of the event loop's 3 ms (README, Performance).

    On PostgreSQL `Database.atomic()`'s transaction is asyncpg's own, on a connection that
    SQLAlchemy runs in AUTOCOMMIT mode: the session's statements run inside it, and its
    commit and rollback send nothing. On SQLite the session joins the connection's
    transaction and leaves it to the unit of work to end. Either way the unit of work
    commits or rolls back the session's writes with its own."""
    if isinstance(connection, AsyncSession):
        yield connection
        return
    bind = await connection.sqlalchemy() if isinstance(connection, Leased) else connection
    # join_transaction_mode "conditional_savepoint" (the default): on SQLite the connection is
    # in a transaction, which the session joins and never commits; on PostgreSQL SQLAlchemy
    # sees none (AUTOCOMMIT), and the session's own begin and end send nothing.
    async with AsyncSession(bind=bind, autoflush=False, expire_on_commit=False,
                            join_transaction_mode="conditional_savepoint") as session:
        yield session
        await session.flush()


def dialect_of(connection: Connection) -> str:
    if isinstance(connection, AsyncConnection | Leased):
        return connection.dialect.name
    return connection.get_bind().dialect.name


def inserting_rows(table: Table, *, after_pending: bool = False, batched: bool = False
                   ) -> Prepared:
    """An INSERT of one whole row of `table`, its values bound by column name, built once
    (no ORM flush, no per-request statement construction)."""
    return Prepared(insert(table).values({column.name: bindparam(column.name)
                                          for column in table.c}),
                    after_pending=after_pending, batched=batched)


def labelled(table: Table, prefix: str) -> list[Label[Any]]:
    """The table's columns under prefixed names, so several tables' columns never collide."""
    return [column.label(f"{prefix}{column.name}") for column in table.c]


@functools.cache
def _mappers_configured() -> None:
    """The ORM sets up its attribute machinery on first use; a detached object built before
    any query would find it missing."""
    configure_mappers()


def detached(model: type[M], prefix: str, names: tuple[str, ...], values: Mapping[Any, Any]
             ) -> M:
    """A detached, read-only `model` filled from a row's prefixed columns the way the ORM
    fills the objects it loads: straight into the instance's dict, without the constructor's
    per-attribute change tracking (a fifth of UserInfo's own CPU had gone there)."""
    _mappers_configured()
    instance: M = instance_state_manager(model).new_instance()
    instance.__dict__.update({name: values[f"{prefix}{name}"] for name in names})
    return instance
