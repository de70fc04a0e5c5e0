"""The consent ledger is append-only in the database itself (README "Consent", PRIV-06), not
only in our code: raw SQL that changes any column of an entry, or deletes one, is refused by
the trigger of migrations/versions/0003_consent.py, on SQLite and on PostgreSQL alike, and the
entry is exactly as it was afterwards. The one change allowed is erasing the payload (personal
data), which the hash chain does not cover."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from idp.services.consent import ledger
from idp.services.context import Context
from idp.store.models import LedgerEntry
from tests.helpers import Flow, get_code, make_app, make_user

REFUSED = "consent_ledger is append-only"
COLUMNS = [column.name for column in LedgerEntry.__table__.columns]


@pytest.fixture
async def entries(client: httpx.AsyncClient, ctx: Context) -> list[dict[str, Any]]:
    """Two ledger entries, written the way they always are: a customer agreeing to two apps."""
    await make_user(ctx)
    for name, uri in (("Shop", "https://app.example/shop"), ("Club", "https://app.example/club")):
        await get_code(client, Flow(await make_app(ctx, name=name, redirect_uri=uri)))
    rows = await ledger_rows(ctx)
    assert len(rows) == 2 and all(row["payload"] is not None for row in rows)
    return rows


async def ledger_rows(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.transaction() as session:
        result = await session.execute(text("SELECT * FROM consent_ledger ORDER BY seq"))
        return [{k: _plain(v) for k, v in row.items()} for row in result.mappings()]


def _plain(value: Any) -> Any:
    """A JSON column reads back as text on SQLite and as a value on PostgreSQL."""
    if isinstance(value, str) and value[:1] in "{[":
        return json.loads(value)
    return value


def changed(column: str, value: Any) -> Any:
    """Another value of the column's type (same length for the fixed-width strings, so that
    nothing but the guard can refuse it)."""
    if column == "payload":
        return json.dumps({"tampered": True})
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1000
    assert isinstance(value, str) and value, column
    return value[:-1] + ("a" if value[-1] != "a" else "b")


def update_of(column: str, also: str = "") -> str:
    # Column names come from the model, never from input.
    return f"UPDATE consent_ledger SET {column} = :value{also} WHERE seq = :seq"  # noqa: S608


async def refused(ctx: Context, statement: str, **params: Any) -> None:
    with pytest.raises(DBAPIError, match=REFUSED):
        async with ctx.db.transaction() as session:
            await session.execute(text(statement), params)


def test_every_column_of_the_ledger_is_covered() -> None:
    """The parametrisations below follow the model; a new column is guarded or this fails."""
    assert set(COLUMNS) == {
        "seq", "entry_id", "grant_id", "client_id", "subject_ref", "action", "channel", "gpc",
        "created_at", "payload", "payload_digest", "prev_hash", "entry_hash"}


@pytest.mark.parametrize("column", COLUMNS)
async def test_an_update_of_any_column_is_refused(
        ctx: Context, entries: list[dict[str, Any]], column: str) -> None:
    target = entries[0]
    await refused(ctx, update_of(column), value=changed(column, target[column]),
                  seq=target["seq"])
    assert await ledger_rows(ctx) == entries
    assert await ledger.verify(ctx) == (2, [])


@pytest.mark.parametrize("column", [c for c in COLUMNS if c != "payload"])
async def test_erasing_the_payload_does_not_open_the_other_columns(
        ctx: Context, entries: list[dict[str, Any]], column: str) -> None:
    """The allowed erasure (payload to NULL) smuggles no other change past the guard."""
    target = entries[1]
    await refused(ctx, update_of(column, also=", payload = NULL"),
                  value=changed(column, target[column]), seq=target["seq"])
    assert await ledger_rows(ctx) == entries


@pytest.mark.parametrize("statement", [
    "DELETE FROM consent_ledger WHERE seq = :seq",
    "DELETE FROM consent_ledger",
])
async def test_a_delete_is_refused(ctx: Context, entries: list[dict[str, Any]],
                                   statement: str) -> None:
    await refused(ctx, statement, seq=entries[0]["seq"])
    assert await ledger_rows(ctx) == entries
    assert await ledger.verify(ctx) == (2, [])


async def test_an_upsert_onto_an_entry_is_refused(
        ctx: Context, entries: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE is an update of the entry (both databases fire the
    update trigger for it)."""
    target = entries[0]
    columns = ", ".join(COLUMNS)
    upsert = (f"INSERT INTO consent_ledger ({columns}) SELECT {columns} "  # noqa: S608
              "FROM consent_ledger WHERE seq = :seq "
              "ON CONFLICT (seq) DO UPDATE SET action = 'withdraw'")
    await refused(ctx, upsert, seq=target["seq"])
    assert await ledger_rows(ctx) == entries


async def test_erasing_the_payload_is_the_one_change_allowed(
        ctx: Context, entries: list[dict[str, Any]]) -> None:
    async with ctx.db.transaction() as session:
        await session.execute(text("UPDATE consent_ledger SET payload = NULL WHERE seq = :seq"),
                              {"seq": entries[0]["seq"]})
    assert await ledger_rows(ctx) == [{**entries[0], "payload": None}, entries[1]]
    assert await ledger.verify(ctx) == (2, [])
    # Once erased, a payload cannot be put back (nor a different one written).
    await refused(ctx, update_of("payload"), value=json.dumps(entries[0]["payload"]),
                  seq=entries[0]["seq"])


async def test_insert_or_replace_cannot_rewrite_an_entry_on_sqlite(
        ctx: Context, entries: list[dict[str, Any]]) -> None:
    if ctx.db.dialect != "sqlite":
        pytest.skip("INSERT OR REPLACE is SQLite's")
    rewritten = ", ".join("'withdraw'" if c == "action" else c for c in COLUMNS)
    replace = (f"INSERT OR REPLACE INTO consent_ledger ({', '.join(COLUMNS)}) "  # noqa: S608
               f"SELECT {rewritten} FROM consent_ledger WHERE seq = :seq")
    try:
        await refused(ctx, replace, seq=entries[0]["seq"])
    finally:
        assert await ledger_rows(ctx) == entries


async def test_truncate_cannot_empty_the_ledger_on_postgresql(
        ctx: Context, entries: list[dict[str, Any]]) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
    try:
        await refused(ctx, "TRUNCATE consent_ledger")
    finally:
        assert await ledger_rows(ctx) == entries
