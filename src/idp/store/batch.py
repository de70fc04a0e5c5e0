"""Writes of a unit of work held back and sent to PostgreSQL together, as one statement.

A password sign-in's second unit of work was eleven round trips to the database, six of them
writes whose outcome nothing in the unit of work reads: the account's counter cleared, the
security event, the session, the code, the session's app, the interaction's end. Each round
trip cost the server and the database some 0.14 ms of CPU together (measured with
bench/signin_cost.py --against), a fifth of the sign-in's own work beside the hash.

On `Database.atomic()`'s connection to PostgreSQL a `Prepared` write marked `batched` is not
sent when it is asked for: it waits in the unit of work's `Batch`, and the writes waiting are
sent as one statement, each a data-modifying common table expression of it (PostgreSQL's
`WITH w0 AS (INSERT ...), w1 AS (DELETE ...) INSERT ...`, which runs every one of them to
completion), when the unit of work commits, or before a statement that reads or writes a
table one of them writes. So the unit of work sees its own writes wherever it reads them, and
all of them still commit or roll back together. Foreign keys are checked at the end of the
statement, so a row may refer to another written in the same one.

What a batched statement must be, since it is not sent at once: a plain INSERT, UPDATE or
DELETE with no RETURNING, whose errors no caller catches at the call (they are raised where
the batch is sent: at the commit, or at the statement that made it go), and whose SQL holds
no literal text (its `$n` placeholders are renumbered). Two writes of the same table are
never in one statement: the sub-statements of one run against the same snapshot and cannot
see each other's rows. Elsewhere (SQLite, an ORM unit of work, a statement on its own) a
batched statement runs at once, as any other.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Table, TextClause
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause

PLACEHOLDER = re.compile(r"\$(\d+)")
_WRITES = ("INSERT ", "UPDATE ", "DELETE ")


def tables_of(statement: Any) -> frozenset[str] | None:
    """The tables a statement reads or writes, or None when that cannot be told from it
    (text, literal columns): such a statement always sends the batch first."""
    names = set()
    for element in visitors.iterate(statement):
        if isinstance(element, TextClause) or (
                isinstance(element, ColumnClause) and element.is_literal):
            return None
        if isinstance(element, Table):
            names.add(element.name)
    return frozenset(names)


def can_wait(sql: str) -> bool:
    """Whether a compiled statement may wait in a batch (see the module's docstring)."""
    return (sql.startswith(_WRITES) and "RETURNING" not in sql and "'" not in sql
            and "$$" not in sql)


class Batch:
    """The writes a unit of work holds: their SQL (compiled for asyncpg), values and tables."""

    __slots__ = ("sql", "tables", "values")

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.values: list[Any] = []
        self.tables: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.sql)

    def must_send_before(self, tables: frozenset[str] | None) -> bool:
        """Whether a statement on `tables` must wait for the writes held to be sent."""
        return bool(self.sql) and (tables is None or not self.tables.isdisjoint(tables))

    def add(self, sql: str, values: list[Any], tables: frozenset[str]) -> None:
        self.sql.append(sql)
        self.values.extend(values)
        self.tables.update(tables)

    def take(self) -> tuple[str, list[Any]]:
        """One statement for every write held, and its values; the batch is empty after."""
        sql, values = _combined(tuple(self.sql)), self.values
        self.sql, self.values, self.tables = [], [], set()
        return sql, values


_COMBINED: dict[tuple[str, ...], str] = {}


def _combined(statements: tuple[str, ...]) -> str:
    """`WITH w0 AS (first), w1 AS (second) last`, the placeholders numbered on (the same
    few sequences of writes come again and again, so each is built once)."""
    if len(statements) == 1:
        return statements[0]
    combined = _COMBINED.get(statements)
    if combined is None:
        parts, offset = [], 0
        for sql in statements:
            parts.append(_shifted(sql, offset))
            offset += max(map(int, PLACEHOLDER.findall(sql)), default=0)
        combined = "WITH " + ", ".join(
            f"w{index} AS ({sql})" for index, sql in enumerate(parts[:-1])) + " " + parts[-1]
        if len(_COMBINED) < 1024:
            _COMBINED[statements] = combined
    return combined


def _shifted(sql: str, offset: int) -> str:
    """`sql` with its placeholders `$n` numbered from `offset + 1`."""
    if not offset:
        return sql
    return PLACEHOLDER.sub(lambda number: f"${int(number[1]) + offset}", sql)
