"""Prepared: on PostgreSQL the hottest reads go to asyncpg directly. They must answer
exactly as SQLAlchemy's own execution does, and a connection that broke under them must
not be handed out again."""

from __future__ import annotations

import asyncio

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import make_url

from idp.services.context import Context
from idp.store.models import User
from idp.store.prepared import Prepared
from tests.helpers import Flow, get_code, make_app, make_user, redeem

USER = Prepared(select(User.__table__).where(User.__table__.c.email == bindparam("email"))
                    .limit(1))


async def test_both_paths_answer_alike(ctx: Context) -> None:
    await make_user(ctx, email="ana@example.com", given_name="Ana",
                    address={"country": "PT", "lines": ["Rua 1", None]})
    async with ctx.db.statements() as connection:  # asyncpg directly on PostgreSQL
        direct = await USER.first(connection, {"email": "ana@example.com"})
        missing = await USER.first(connection, {"email": "nobody@example.com"})
    async with ctx.db.transaction(read_only=True) as session:  # always SQLAlchemy's way
        ordinary = await USER.first(session, {"email": "ana@example.com"})
    assert direct is not None and ordinary is not None and missing is None
    assert dict(direct) == dict(ordinary)
    assert direct["email_verified"] is True
    assert direct["profile"]["address"] == {"country": "PT", "lines": ["Rua 1", None]}


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

    with pytest.raises(RuntimeError):
        async with ctx.db.atomic() as connection:
            await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
            await VERIFY.run(connection, {"b_email": "bo@example.com", "b_verified": False})
            raise RuntimeError("the unit of work fails after its writes")
    assert await verified() == [True, True]
    async with ctx.db.atomic() as connection:
        await VERIFY.run(connection, {"b_email": "ana@example.com", "b_verified": False})
        await VERIFY.run(connection, {"b_email": "bo@example.com", "b_verified": False})
    assert await verified() == [False, False]
