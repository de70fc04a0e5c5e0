"""One-statement reads on the hottest paths, sent to the driver directly on PostgreSQL.

A Core SELECT through SQLAlchemy's execution layer (cache-key lookup, execution context,
result metadata, the greenlet hop into the adapter and back) cost a third of a UserInfo
request's CPU beside the statement itself. `PreparedRead` compiles its statement once per
dialect and, on an `AsyncConnection` to PostgreSQL, hands the SQL and its positional values
straight to asyncpg, which prepares it once per connection. The columns then go through the
same result processors SQLAlchemy would apply (asyncpg's JSON codec is SQLAlchemy's own, set
on every pooled connection). Anything else (SQLite, an ORM session) runs the statement the
ordinary way, so both paths answer alike and the suite runs each on its database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

Processor = Callable[[Any], Any]


class _Compiled:
    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ())
        # Values the statement carries itself (a LIMIT, a literal), by bind name.
        self.defaults = dict(compiled.params)
        self.columns: tuple[tuple[str, Processor | None], ...] = tuple(
            (str(column.key),
             column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in statement.selected_columns)


class PreparedRead:
    """`await read.first(connection, params)`: the first row as a mapping, or None."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    async def first(self, connection: AsyncSession | AsyncConnection,
                    params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if isinstance(connection, AsyncConnection) and connection.dialect.driver == "asyncpg":
            return await self._first_on_asyncpg(connection, params)
        row = (await connection.execute(self.statement, params)).first()
        return row._mapping if row is not None else None

    async def _first_on_asyncpg(self, connection: AsyncConnection,
                                params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _Compiled(self.statement, dialect)
        values = {**compiled.defaults, **params}
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None  # checked out: the pool hands out live connections
        try:
            record = await driver.fetchrow(
                compiled.sql, *(values[name] for name in compiled.order))
        except BaseException as error:
            if not _answered_by_the_server(error):
                # Broken, or cut off mid-statement (a cancelled request): the pool must not
                # hand this connection out again, as SQLAlchemy does for its own statements.
                # (A closed one also fails its reset at check-in; one cut off mid-statement
                # may not, so this is said outright.)
                await connection.invalidate(error if isinstance(error, Exception) else None)
            raise
        if record is None:
            return None
        return {name: (process(value) if process is not None else value)
                for (name, process), value in zip(compiled.columns, record.values(),
                                                  strict=True)}


def _answered_by_the_server(error: BaseException) -> bool:
    """An error the server reported about the statement (a timeout, a constraint): the
    connection itself is fine."""
    import asyncpg  # type: ignore[import-untyped]

    return isinstance(error, asyncpg.PostgresError) and not isinstance(
        error, asyncpg.PostgresConnectionError)
