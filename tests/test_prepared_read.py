"""Prepared: on PostgreSQL the hottest reads go to asyncpg directly. They must answer
exactly as SQLAlchemy's own execution does, and a connection that broke under them must
not be handed out again."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import Float, bindparam, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SAWarning

from idp.services.context import Context
from idp.store import interactions as interaction_store
from idp.store import sessions as session_store
from idp.store.models import BrowserSession, Interaction, SecurityEvent, User
from idp.store.prepared import Leased, Prepared, _direct, orm_session
from tests.helpers import Flow, get_code, make_app, make_user, redeem

USER = Prepared(select(User.__table__).where(User.__table__.c.email == bindparam("email"))
                    .limit(1))


async def test_both_paths_answer_alike(ctx: Context) -> None:
    await make_user(ctx, email="ana@example.com", given_name="Ana",
                    address={"country": "PT", "lines": ["Rua 1", None]})
    async with ctx.db.statements() as connection:  # asyncpg directly on PostgreSQL
        direct = await USER.first(connection, {"email": "ana@example.com"})
        missing = await USER.first(connection, {"email": "nobody@example.com"})
    async with ctx.db.transaction(read_only=True) as session:
        in_unit = await USER.first(session, {"email": "ana@example.com"})
        ordinary = (await session.execute(USER.statement, {"email": "ana@example.com"})
                    ).first()  # SQLAlchemy's own execution
    assert direct is not None and ordinary is not None and missing is None
    assert dict(direct) == dict(ordinary._mapping) == dict(in_unit or {})
    assert direct["email_verified"] is True
    assert direct["profile"]["address"] == {"country": "PT", "lines": ["Rua 1", None]}


async def test_json_columns_read_back_as_written(ctx: Context) -> None:
    """JSON columns are read by orjson, and by the standard library where orjson would read
    a value differently (an integer beyond 64 bits, which it turns into a float) or refuse
    it (a lone surrogate): every value reads back as it was written, on the direct path and
    through SQLAlchemy alike."""
    profiles = {
        "ana@example.com": {"nickname": "Zoë 山田", "big": 2**70 + 1, "small": -(2**64) - 1,
                            "edge": 2**64 - 1, "ratio": 0.1, "phone": "12345678901234567890",
                            "nested": {"list": [1, None, True, "é"]}},
        "bo@example.com": {"nickname": "\ud800", "n": 1},
    }
    for email, profile in profiles.items():
        await make_user(ctx, email=email)
        async with ctx.db.transaction() as session:  # any JSON, past the profile's schema
            await session.execute(update(User).where(User.email == email)
                                  .values(profile=profile))
    for email, profile in profiles.items():
        async with ctx.db.statements() as connection:
            direct = await USER.first(connection, {"email": email})
        async with ctx.db.transaction(read_only=True) as session:
            user = await session.scalar(select(User).where(User.email == email))
        assert direct is not None and user is not None
        for read in (direct["profile"], user.profile):
            assert {name: read[name] for name in profile} == profile
            assert [type(read[name]) for name in profile] == [type(v) for v in profile.values()]


async def test_a_broken_connection_is_not_handed_out_again(
        client: httpx.AsyncClient, ctx: Context) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("the direct path is PostgreSQL's")
    await make_user(ctx)
    flow = Flow(await make_app(ctx))
    access = (await redeem(client, flow, await get_code(client, flow))).json()["access_token"]

    async def userinfo() -> int:
        return (await client.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
                ).status_code

    assert await userinfo() == 200
    # Every backend this engine's pool holds is killed, as a database restart would.
    url = make_url(ctx.settings.database_url)
    killer = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                   password=url.password, database=url.database)
    try:
        killed = await killer.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await killer.close()
    assert killed >= 1
    await asyncio.sleep(0.2)
    statuses = [await userinfo() for _ in range(ctx.db.engine.pool.size() + 2)]
    # A request that meets a dead connection is answered 503 (the database is unavailable
    # to it); each dead one is dropped, so service comes back and stays back.
    assert 503 in statuses, statuses  # the killed connection was met
    assert statuses[-2:] == [200, 200], statuses
    assert set(statuses) <= {200, 503}, statuses


VERIFY = Prepared(update(User.__table__).where(User.__table__.c.email == bindparam("b_email"))
                  .values(email_verified=bindparam("b_verified")))


async def test_an_atomic_unit_of_work_is_all_or_nothing(ctx: Context) -> None:
    """`Database.atomic()`: on PostgreSQL asyncpg's own transaction around Prepared
    statements. A failure inside it leaves nothing behind; a clean end commits all."""
    await make_user(ctx, email="ana@example.com")
    await make_user(ctx, email="bo@example.com")

    async def verified() -> list[bool]:
        async with ctx.db.statements() as connection:
            return [bool((await USER.first(connection, {"email": e}) or {})["email_verified"])
                    for e in ("ana@example.com", "bo@example.com")]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError) as raised:
            async with ctx.db.atomic() as connection:
                await VERIFY.run(connection, {"b_email": "ana@example.com",
                                              "b_verified": False})
                await VERIFY.run(connection, {"b_email": "bo@example.com",
                                              "b_verified": False})
                raise RuntimeError("the unit of work fails after its writes")
        del raised, connection  # what still referred to the unit of work
        gc.collect()
    assert await verified() == [True, True]
    # Its connection went back to the pool, not left for the garbage collector (which
    # SQLAlchemy warns of, terminating it).
    assert not [w for w in caught if issubclass(w.category, SAWarning)], caught
    async with ctx.db.atomic() as connection:
        await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
        await VERIFY.run(connection, {"b_email": "bo@example.com", "b_verified": False})
    assert await verified() == [False, False]


async def test_the_orm_inside_an_atomic_unit_stands_or_falls_with_it(ctx: Context) -> None:
    """`orm_session`: a rare branch of an atomic unit of work uses the ORM on the same
    connection and transaction. Its writes are seen by the unit's next statements,
    committed with them, and rolled back with them; nothing is written on its own."""
    user_id = await make_user(ctx, email="ana@example.com")

    async def kinds() -> list[str]:
        async with ctx.db.transaction(read_only=True) as session:
            return sorted(await session.scalars(select(SecurityEvent.kind).where(
                SecurityEvent.user_id == user_id)))

    def event(kind: str) -> SecurityEvent:
        return SecurityEvent(id=kind, user_id=user_id, kind=kind, detail={}, created_at=1)

    with pytest.raises(RuntimeError):
        async with ctx.db.atomic() as connection:
            async with orm_session(connection) as session:
                session.add(event("orm-then-fail"))
            await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
            raise RuntimeError("the unit of work fails after the session's block")
    assert await kinds() == []
    async with ctx.db.atomic() as connection:
        async with orm_session(connection) as session:
            session.add(event("orm"))
        # SQLAlchemy's own execution on the unit's connection (a leased one's is made
        # for it) sees it too.
        executes = await connection.sqlalchemy() if isinstance(connection, Leased) \
            else connection
        seen = await executes.scalar(
            select(func.count()).select_from(SecurityEvent).where(
                SecurityEvent.user_id == user_id))
        await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
    assert seen == 1
    assert await kinds() == ["orm"]
    # A session given to it is used as it is.
    async with ctx.db.transaction() as unit, orm_session(unit) as session:
        assert session is unit
    # The connection went back to the pool as it came: the next ORM unit of work on it (the
    # pool hands out the most recently returned first) is one transaction again, not a
    # statement at a time.
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as unit:
            unit.add(event("orm-unit-then-fail"))
            await unit.flush()
            raise RuntimeError("the ORM unit of work fails after its flush")
    assert await kinds() == ["orm"]


SLEEP = Prepared(select(func.pg_sleep(bindparam("b_seconds", type_=Float))))
BACKEND = Prepared(select(func.pg_backend_pid().label("pid")))
ROOT = Prepared(select(func.sqrt(bindparam("b_x", type_=Float))))  # refused below zero


async def _cancel_mid_statement(work: Callable[[], Awaitable[None]]) -> None:
    """`work` cancelled while it waits on the database (a client that went away)."""
    task = asyncio.create_task(work())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_atomic_unit_cut_off_mid_statement_writes_nothing_and_frees_its_connection(
        ctx: Context) -> None:
    """A request cancelled while its unit of work waits on the database (the client went
    away): nothing of it is written, its connection goes back to the pool (not handed out
    again: it may still be busy with the statement), and the next unit of work runs."""
    if ctx.db.dialect != "postgresql":
        pytest.skip("the direct path is PostgreSQL's")
    await make_user(ctx, email="ana@example.com")
    pool = ctx.db.engine.sync_engine.pool

    async def cut_off() -> None:
        async with ctx.db.atomic() as connection:
            await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
            await SLEEP.first(connection, {"b_seconds": 5})

    await _cancel_mid_statement(cut_off)
    assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _verified(ctx, "ana@example.com") is True
    async with ctx.db.atomic() as connection:
        await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
    assert await _verified(ctx, "ana@example.com") is False


async def test_a_leased_connection_goes_back_to_the_pool_however_its_block_ends(
        ctx: Context) -> None:
    """`Database.statements()` on PostgreSQL leases a pool connection without SQLAlchemy's
    connection layer. It goes back whether its block ends cleanly, fails, or is cancelled
    mid-statement (then it is dropped: it may still be busy); each lease after that gets a
    working connection; and nothing is left for the garbage collector."""
    if ctx.db.dialect != "postgresql":
        pytest.skip("leased connections are PostgreSQL's")
    await make_user(ctx, email="ana@example.com")
    pool = ctx.db.engine.sync_engine.pool
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with ctx.db.statements() as connection:
            assert (await USER.first(connection, {"email": "ana@example.com"})) is not None
            assert pool.checkedout() == 1  # type: ignore[attr-defined]
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            async with ctx.db.statements() as connection:
                await USER.first(connection, {"email": "ana@example.com"})
                raise RuntimeError("the request fails after its read")
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        # A statement the server refuses leaves the connection fine, and back in the pool.
        with pytest.raises(asyncpg.PostgresError):
            async with ctx.db.statements() as connection:
                refused = await BACKEND.first(connection, {})
                await ROOT.first(connection, {"b_x": -1.0})
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        async with ctx.db.statements() as connection:
            assert await BACKEND.first(connection, {}) == refused  # the same, kept (LIFO)

        backends: list[int] = []

        async def cut_off() -> None:
            async with ctx.db.statements() as connection:
                backends.append((await BACKEND.first(connection, {}) or {})["pid"])
                await SLEEP.first(connection, {"b_seconds": 5})

        await _cancel_mid_statement(cut_off)
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        for _ in range(pool.size() + 1):  # type: ignore[attr-defined]
            async with ctx.db.statements() as connection:
                row = await USER.first(connection, {"email": "ana@example.com"})
                backend = await BACKEND.first(connection, {})
            assert row is not None and backend is not None and backend["pid"] != backends[0]
        # One that broke under its block (closed) is dropped, not handed out again.
        async with ctx.db.statements() as connection:
            broken = (await BACKEND.first(connection, {}) or {})["pid"]
            await connection.driver.close()
        async with ctx.db.atomic() as connection:
            backend = await BACKEND.first(connection, {})
        assert backend is not None and backend["pid"] != broken
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        del connection
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, SAWarning)], caught


async def test_a_leased_connection_that_sat_idle_is_checked_first(
        ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's own checks run for a leased connection as for any other: one idle past
    IDLE_PING_SECONDS whose backend has gone (a database restart) is found before it is
    handed out, and the read runs on a fresh one; no request sees the dead one."""
    if ctx.db.dialect != "postgresql":
        pytest.skip("leased connections are PostgreSQL's")
    await make_user(ctx, email="ana@example.com")
    async with ctx.db.statements() as connection:
        first = (await BACKEND.first(connection, {}) or {})["pid"]
    url = make_url(ctx.settings.database_url)
    killer = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                   password=url.password, database=url.database)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await killer.close()
    await asyncio.sleep(0.2)
    monkeypatch.setattr("idp.store.db.IDLE_PING_SECONDS", 0.0)
    async with ctx.db.statements() as connection:
        row = await USER.first(connection, {"email": "ana@example.com"})
        second = await BACKEND.first(connection, {})
    assert row is not None and second is not None and second["pid"] != first


SET_EMAIL = Prepared(update(User.__table__).where(User.__table__.c.email == bindparam("b_from"))
                     .values(email=bindparam("b_to")))


async def _verified(ctx: Context, email: str) -> bool | None:
    async with ctx.db.statements() as connection:
        row = await USER.first(connection, {"email": email})
    return None if row is None else bool(row["email_verified"])


async def _unverify_and_commit(ctx: Context, user_id: str) -> None:
    """A unit of work that ends cleanly commits what its statements wrote."""
    async with ctx.db.transaction() as session:
        await session.get(User, user_id)
        await VERIFY.run(session, {"b_email": "ana@example.com", "b_verified": False})
    assert await _verified(ctx, "ana@example.com") is False


async def test_in_a_unit_of_work_a_statement_is_part_of_its_transaction(ctx: Context) -> None:
    """In an ORM unit of work on PostgreSQL, once its transaction has begun, a Prepared
    statement goes to asyncpg on the session's own connection: the rest of the unit of work
    sees what it wrote, and a failure takes it back with everything else."""
    ana = await make_user(ctx, email="ana@example.com")
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            assert (await session.get(User, ana)) is not None  # begins the transaction
            if ctx.db.dialect == "postgresql":
                assert await _direct(session) is not None  # past SQLAlchemy from here on
            await VERIFY.run(session, {"b_email": "ana@example.com", "b_verified": False})
            seen = await session.scalar(select(User.email_verified).where(User.id == ana))
            assert seen is False
            assert await _verified(ctx, "ana@example.com") is True  # not committed yet
            raise RuntimeError("the unit of work fails after its write")
    assert await _verified(ctx, "ana@example.com") is True
    await _unverify_and_commit(ctx, ana)


async def test_a_unit_of_work_that_opens_with_a_statement_is_one_transaction(
        ctx: Context) -> None:
    """The session's transaction begins with its first statement even when that one goes
    past SQLAlchemy: a later failure takes it back."""
    await make_user(ctx, email="ana@example.com")
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            await VERIFY.run(session, {"b_email": "ana@example.com", "b_verified": False})
            assert await USER.first(session, {"email": "ana@example.com"}) is not None
            if ctx.db.dialect == "postgresql":
                assert await _direct(session) is not None
            raise RuntimeError("the unit of work fails after its write")
    assert await _verified(ctx, "ana@example.com") is True


async def test_a_constraint_in_a_unit_of_work_raises_as_sqlalchemy_does(ctx: Context) -> None:
    """Callers of an ORM unit of work catch SQLAlchemy's IntegrityError (two tabs racing to
    the same row); the direct path raises the same, and the unit of work rolls back."""
    ana = await make_user(ctx, email="ana@example.com")
    await make_user(ctx, email="bo@example.com")
    with pytest.raises(IntegrityError):
        async with ctx.db.transaction() as session:
            await session.get(User, ana)
            await VERIFY.run(session, {"b_email": "ana@example.com", "b_verified": False})
            await SET_EMAIL.run(session, {"b_from": "ana@example.com", "b_to": "bo@example.com"})
    assert await _verified(ctx, "ana@example.com") is True
    # The connection went back to the pool in working order.
    await _unverify_and_commit(ctx, ana)


async def test_rows_the_unit_of_work_added_are_written_before_a_row_that_refers_to_them(
        ctx: Context) -> None:
    """An account added to the unit of work (not yet written) and a browser session of it,
    written at once: the account goes first, as the ORM would have ordered the two."""
    ana = await make_user(ctx, email="ana@example.com")
    async with ctx.db.transaction() as session:
        await session.get(User, ana)
        session.add(User(id="new-account", email="new@example.com", email_verified=True,
                         password_hash=None, profile={}, created_at=1, updated_at=1))
        await session_store.add_session(session, BrowserSession(
            id_hash="h" * 64, sid="s" * 22, user_id="new-account", auth_time=1, amr=["pwd"],
            acr="0", created_at=1, expires_at=ctx.now() + 60, ended_at=None, identity_id=None,
            device=None, network=None, last_used_at=1))
    async with ctx.db.transaction(read_only=True) as session:
        live = await session_store.find_live_session(session, "h" * 64, ctx.now())
    assert live is not None and live.user_id == "new-account" and live.amr == ("pwd",)


async def test_an_ended_interaction_leaves_the_unit_of_work(ctx: Context) -> None:
    """Deleting an interaction the unit of work holds, with a change not yet written: the
    row goes, and the commit does not try to write the change to a row that is gone."""
    client = await make_app(ctx)
    async with ctx.db.transaction() as session:
        session.add(Interaction(id="i" * 32, browser_hash="b" * 64, client_id=client.client_id,
                                request={}, session_sid=None, consent_given=False,
                                pending_import=None, created_at=1, expires_at=ctx.now() + 60))
    async with ctx.db.transaction() as session:
        held = await interaction_store.get_interaction(session, "i" * 32, ctx.now())
        assert held is not None
        held.consent_given = True
        await interaction_store.delete_interaction(session, "i" * 32)
    async with ctx.db.transaction(read_only=True) as session:
        assert await interaction_store.get_interaction(session, "i" * 32, ctx.now()) is None
