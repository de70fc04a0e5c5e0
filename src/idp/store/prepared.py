"""The hottest paths' statements, sent to the driver directly on PostgreSQL.

A Core statement through SQLAlchemy's execution layer (cache-key lookup, execution context,
result metadata, the greenlet hop into the adapter and back) cost a third of a UserInfo
request's CPU beside the statement itself, and SQLAlchemy's session and connection layers
were over a quarter of a rotating refresh. `Prepared` compiles its statement once per dialect
and, on an `AsyncConnection` to PostgreSQL, hands the SQL and its positional values straight
to asyncpg, which prepares it once per connection. Values go through the bind processors, and
columns through the result processors, SQLAlchemy would apply (asyncpg's JSON codec is
SQLAlchemy's own, set on every pooled connection). Anything else (SQLite, an ORM session) runs
the statement the ordinary way, so both paths answer alike and the suite runs each on its
database. `Database.atomic()` gives such statements a transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from sqlalchemy import Label, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.base import manager_of_class as instance_state_manager
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any]
# What a store function may run its statements on: the ORM unit of work it is part of, or
# a bare connection (`Database.atomic()`, `Database.statements()`).
Connection = AsyncSession | AsyncConnection
M = TypeVar("M")


class _Compiled:
    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ())
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
    params)` for a statement that returns nothing."""

    def __init__(self, statement: Executable) -> None:
        self.statement: Any = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        return compiled

    async def first(self, connection: AsyncSession | AsyncConnection,
                    params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if isinstance(connection, AsyncConnection) and connection.dialect.driver == "asyncpg":
            compiled = self._for(connection.dialect)
            record = await _on_asyncpg(connection, "fetchrow", compiled.sql,
                                       compiled.values(params))
            if record is None:
                return None
            return {name: (process(value) if process is not None else value)
                    for (name, process), value in zip(compiled.columns, record.values(),
                                                      strict=True)}
        row = (await connection.execute(self.statement, params)).first()
        return cast(Mapping[str, Any], row._mapping) if row is not None else None

    async def all(self, connection: AsyncSession | AsyncConnection,
                  params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Every row, as mappings."""
        if isinstance(connection, AsyncConnection) and connection.dialect.driver == "asyncpg":
            compiled = self._for(connection.dialect)
            records = await _on_asyncpg(connection, "fetch", compiled.sql,
                                        compiled.values(params))
            return [{name: (process(value) if process is not None else value)
                     for (name, process), value in zip(compiled.columns, record.values(),
                                                       strict=True)}
                    for record in records]
        result = await connection.execute(self.statement, params)
        return [cast(Mapping[str, Any], row._mapping) for row in result]

    async def run(self, connection: AsyncSession | AsyncConnection,
                  params: Mapping[str, Any]) -> None:
        if isinstance(connection, AsyncConnection) and connection.dialect.driver == "asyncpg":
            compiled = self._for(connection.dialect)
            await _on_asyncpg(connection, "execute", compiled.sql, compiled.values(params))
            return
        await connection.execute(self.statement, params)


async def _on_asyncpg(connection: AsyncConnection, method: str, sql: str, values: list[Any]
                      ) -> Any:
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # checked out: the pool hands out live connections
    try:
        return await getattr(driver, method)(sql, *values)
    except BaseException as error:
        if not _answered_by_the_server(error):
            # Broken, or cut off mid-statement (a cancelled request): the pool must not
            # hand this connection out again, as SQLAlchemy does for its own statements.
            # (A closed one also fails its reset at check-in; one cut off mid-statement
            # may not, so this is said outright.)
            await connection.invalidate(error if isinstance(error, Exception) else None)
        raise


def _answered_by_the_server(error: BaseException) -> bool:
    """An error the server reported about the statement (a timeout, a constraint): the
    connection itself is fine."""
    import asyncpg  # type: ignore[import-untyped]

    return isinstance(error, asyncpg.PostgresError) and not isinstance(
        error, asyncpg.PostgresConnectionError)


def dialect_of(connection: Connection) -> str:
    if isinstance(connection, AsyncConnection):
        return connection.dialect.name
    return connection.get_bind().dialect.name


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
