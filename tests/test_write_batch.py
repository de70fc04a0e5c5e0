"""Writes a unit of work holds back (idp.store.batch): on PostgreSQL, `Database.atomic()`
sends its batched writes together as one statement, at the commit or before a statement on a
table they write. Whatever the database, the unit of work must read its own writes, commit
them all or none, and raise a write's error."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import bindparam, func, literal_column, select, text
from sqlalchemy.exc import IntegrityError

from idp.services.context import Context
from idp.services.signin import security_events
from idp.store import interactions as interaction_store
from idp.store import sessions as session_store
from idp.store import throttles as throttle_store
from idp.store.batch import can_wait, tables_of
from idp.store.models import BrowserSession, Interaction, SecurityEvent, Throttle, User
from idp.store.prepared import Leased, Prepared, orm_session
from tests.helpers import make_app, make_user

EVENTS = Prepared(select(func.count().label("n")).select_from(SecurityEvent)
                  .where(SecurityEvent.user_id == bindparam("b_user_id")))
ACCOUNT = Prepared(select(User.email_verified).where(User.id == bindparam("b_id")))
KEYS = Prepared(select(Throttle.key).where(Throttle.key == bindparam("b_key")))


class Sent(list[str]):
    """The statements sent on a leased connection (PostgreSQL's direct path) from its
    creation until `read()`: asyncpg tells its query loggers on the event loop's next turn,
    so they are read, and the logger taken off the connection, once the unit of work has
    ended."""

    def __init__(self, connection: Leased) -> None:
        super().__init__()
        self.driver = connection.driver
        self.driver.add_query_logger(self.log)

    def log(self, record: Any) -> None:
        self.append(record.query)

    async def read(self) -> list[str]:
        await asyncio.sleep(0)
        self.driver.remove_query_logger(self.log)
        return list(self)


def _logged(connection: Any) -> Sent | None:
    return Sent(connection) if isinstance(connection, Leased) else None


async def _events(ctx: Context, user_id: str) -> int:
    async with ctx.db.statements() as connection:
        row = await EVENTS.first(connection, {"b_user_id": user_id})
    assert row is not None
    return int(row["n"])


async def _interaction(ctx: Context, interaction_id: str) -> None:
    client = await make_app(ctx)
    async with ctx.db.transaction() as session:
        session.add(Interaction(id=interaction_id, browser_hash="b" * 64,
                                client_id=client.client_id, request={}, session_sid=None,
                                consent_given=False, pending_import=None, created_at=1,
                                expires_at=ctx.now() + 60))


def _session(user_id: str) -> BrowserSession:
    return BrowserSession(
        id_hash="h" * 64, sid="s" * 22, user_id=user_id, auth_time=1, amr=["pwd"], acr="0",
        created_at=1, expires_at=2**40, ended_at=None, identity_id=None, device=None,
        network=None, last_used_at=1)


async def _counter(ctx: Context, key: str) -> None:
    async with ctx.db.atomic() as connection:
        assert await throttle_store.count_in_window(connection, key, ctx.now(), 60) == 1


async def test_writes_to_different_tables_go_as_one_statement_at_the_commit(
        ctx: Context) -> None:
    """Three writes to three tables and a read of a fourth: on PostgreSQL the read goes at
    once, the writes wait and go together as one statement before the COMMIT. Each of them
    is written, whatever the database."""
    user_id = await make_user(ctx, email="ana@example.com")
    await _interaction(ctx, "i" * 32)
    await _counter(ctx, "acct:ana")
    async with ctx.db.atomic() as connection:
        sent = _logged(connection)
        await security_events.write(connection, "sign_in", user_id, ctx.now(), method="pwd")
        await interaction_store.delete_interaction(connection, "i" * 32)
        await throttle_store.forget(connection, "acct:ana")
        account = await ACCOUNT.first(connection, {"b_id": user_id})  # another table
        await asyncio.sleep(0)  # asyncpg's loggers are told on the loop's next turn
        if sent is not None:
            assert len(sent) == 1 and sent[0].startswith("SELECT")  # the writes wait
    assert account is not None and account["email_verified"] is True
    if sent is not None:
        statements = await sent.read()  # the read, the three writes in one, the COMMIT
        assert len(statements) == 3, statements
        assert statements[1].startswith("WITH ") and statements[2].strip(" ;") == "COMMIT"
    assert await _events(ctx, user_id) == 1
    async with ctx.db.statements() as connection:
        assert await KEYS.first(connection, {"b_key": "acct:ana"}) is None
    async with ctx.db.transaction(read_only=True) as session:
        assert await interaction_store.get_interaction(session, "i" * 32, ctx.now()) is None


async def test_a_read_of_a_table_written_in_the_unit_sees_the_write(ctx: Context) -> None:
    """A statement on a table a held write changes sends the batch first, so the unit of
    work reads its own writes; the SQLAlchemy connection of an ORM branch does too."""
    user_id = await make_user(ctx, email="ana@example.com")
    async with ctx.db.atomic() as connection:
        await security_events.write(connection, "sign_in", user_id, ctx.now())
        seen = await EVENTS.first(connection, {"b_user_id": user_id})
        await security_events.write(connection, "sign_in", user_id, ctx.now())
        async with orm_session(connection) as session:
            in_orm = await session.scalar(select(func.count()).select_from(SecurityEvent)
                                          .where(SecurityEvent.user_id == user_id))
        await security_events.write(connection, "sign_in", user_id, ctx.now())
    assert seen is not None and seen["n"] == 1
    assert in_orm == 2
    assert await _events(ctx, user_id) == 3


async def test_two_writes_of_one_table_are_not_sent_as_one(ctx: Context) -> None:
    """The parts of one statement see the same snapshot, so a second write of a table the
    batch already writes sends the first before it waits: the counter made by the first
    statement is there for the second to take back."""
    await _counter(ctx, "acct:ana")
    async with ctx.db.atomic() as connection:
        sent = _logged(connection)
        await throttle_store.give_back(connection, "acct:ana")
        await throttle_store.forget(connection, "acct:ana")
    if sent is not None:
        statements = await sent.read()
        assert [s.split(" ")[0] for s in statements] == ["UPDATE", "DELETE", "COMMIT;"]
    async with ctx.db.statements() as connection:
        assert await KEYS.first(connection, {"b_key": "acct:ana"}) is None


async def test_a_write_that_fails_at_the_commit_takes_the_whole_unit_back(
        ctx: Context) -> None:
    """A held write the database refuses (a session of an account that does not exist): the
    unit of work raises the database's error and writes nothing, the statements sent before
    it included; the connection goes back to the pool in working order."""
    ana = await make_user(ctx, email="ana@example.com")
    await _interaction(ctx, "i" * 32)
    pool = ctx.db.engine.sync_engine.pool
    with pytest.raises((IntegrityError, asyncpg.ForeignKeyViolationError)):
        async with ctx.db.atomic() as connection:
            await interaction_store.delete_interaction(connection, "i" * 32)
            await security_events.write(connection, "sign_in", ana, ctx.now())
            await session_store.add_session(connection, _session("no-such-account"))
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _events(ctx, ana) == 0
    async with ctx.db.transaction(read_only=True) as session:
        assert await interaction_store.get_interaction(session, "i" * 32, ctx.now())
    async with ctx.db.atomic() as connection:  # the next unit of work runs
        await security_events.write(connection, "sign_in", ana, ctx.now())
    assert await _events(ctx, ana) == 1


async def test_a_unit_that_fails_sends_none_of_its_held_writes(ctx: Context) -> None:
    user_id = await make_user(ctx, email="ana@example.com")
    with pytest.raises(RuntimeError):
        async with ctx.db.atomic() as connection:
            await security_events.write(connection, "sign_in", user_id, ctx.now())
            raise RuntimeError("the unit of work fails after its write")
    assert await _events(ctx, user_id) == 0


def test_only_plain_writes_of_known_tables_may_wait() -> None:
    """What is not a plain write (a read, a RETURNING), holds literal text whose `$n` would
    be renumbered, or names tables that cannot be told, never waits in a batch."""
    assert can_wait("DELETE FROM throttles WHERE throttles.key = $1::VARCHAR")
    assert not can_wait("SELECT throttles.key FROM throttles")
    assert not can_wait("UPDATE codes SET used_at=$1 WHERE code_hash = $2 RETURNING code_hash")
    assert not can_wait("INSERT INTO events (detail) VALUES ('costs $1')")
    assert tables_of(select(User.id).where(User.id.in_(select(SecurityEvent.user_id)))) == \
        frozenset({"users", "security_events"})
    assert tables_of(select(literal_column("1"))) is None
    assert tables_of(text("DELETE FROM throttles")) is None
