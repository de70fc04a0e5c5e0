"""Several processes on one PostgreSQL behave as one service: a code issued by one replica is
redeemed at another, a key rotation made anywhere is used everywhere within a second
(LISTEN/NOTIFY, not the 30 s key cache), and housekeeping runs on one replica at a time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import select, text

from idp.services import maintenance
from idp.services.context import Context, build_context
from idp.store.models import UsedAssertion
from tests.conftest import make_settings
from tests.helpers import (
    App,
    Flow,
    get_code,
    make_app,
    make_user,
    redeem,
    throwaway_database,
    wait_until_ready,
)
from tests.receiver import free_port

IDP = str(Path(sys.executable).parent / "idp")
REDIRECT_URI = "https://app.example/callback"
SECRET = "a-test-secret-that-is-long-enough-0123"


@dataclass
class Replicas:
    first: str
    second: str
    env: dict[str, str]
    app: App  # the shop, a confidential client


async def _seed(url: str) -> App:
    """The shop and Alice, written the way `idp clients create` and `idp users create` write
    them (tests/test_cli.py runs those commands), without two more processes to start."""
    ctx = build_context(make_settings(url, key_encryption_secret=SECRET))
    try:
        app = await make_app(ctx, redirect_uri=REDIRECT_URI, scopes=["openid", "profile"],
                             grant_types=["authorization_code", "client_credentials"])
        await make_user(ctx)
        return app
    finally:
        await ctx.close()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    base = os.environ.get("IDP_TEST_DATABASE_URL")
    if not base or not base.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL (the PostgreSQL pass of the suite)")
    with throwaway_database(tmp_path_factory.mktemp("replicas"), migrated=True) as url:
        app = asyncio.run(_seed(url))
        yield from _serve(url, app)


def _serve(url: str, app: App) -> Iterator[Replicas]:
    ports = (free_port(), free_port())
    # One service behind a load balancer: one issuer, whichever replica answers.
    issuer = f"http://127.0.0.1:{ports[0]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS"))}
    env.update(IDP_DATABASE_URL=url, IDP_ISSUER=issuer, IDP_DEV_MODE="true",
               IDP_LOG_LEVEL="WARNING", IDP_SHUTDOWN_DRAIN_SECONDS="0",
               IDP_KEY_ENCRYPTION_SECRET=SECRET,
               IDP_ARGON2_TIME_COST="1", IDP_ARGON2_MEMORY_KIB="1024")
    servers = [subprocess.Popen([IDP, "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                wait_until_ready(http, server)
        yield Replicas(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", env,
                       app)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


async def test_a_code_from_one_replica_is_redeemed_at_the_other(replicas: Replicas) -> None:
    app = replicas.app
    flow = Flow(app)
    async with httpx.AsyncClient(base_url=replicas.first, timeout=20) as browser, \
            httpx.AsyncClient(base_url=replicas.second, timeout=20) as other:
        code = await get_code(browser, flow, scope="openid profile")
        # The browser's session cookie works at the other replica too: SSO there.
        again = Flow(app)
        other.cookies = browser.cookies
        second_code = await get_code(other, again, scope="openid profile")
        tokens = await redeem(other, flow, code)
        assert tokens.status_code == 200, tokens.text
        access = tokens.json()["access_token"]
        # A token from one replica is live at the other; a replay at the first is refused.
        userinfo = await browser.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert userinfo.status_code == 200
        replay = await redeem(browser, flow, code)
        assert replay.json()["error"] == "invalid_grant"
        assert (await redeem(browser, again, second_code)).status_code == 200


async def test_a_rotation_made_elsewhere_is_used_within_a_second(replicas: Replicas) -> None:
    async def kid_at(base: str) -> str:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            response = await http.post("/token", data={"grant_type": "client_credentials"},
                                       headers=replicas.app.basic())
        assert response.status_code == 200, response.text
        return str(pyjwt.get_unverified_header(response.json()["access_token"])["kid"])

    before = {await kid_at(replicas.first), await kid_at(replicas.second)}
    assert len(before) == 1
    # The CLI, a third process, rotates; the replicas' key caches hold for 30 s.
    rotated = await asyncio.to_thread(subprocess.run, [IDP, "keys", "rotate"],
                                      env=replicas.env, capture_output=True, timeout=60,
                                      check=True)
    assert rotated.returncode == 0
    done = time.monotonic()
    for base in (replicas.first, replicas.second):
        while (kid := await kid_at(base)) in before:
            assert time.monotonic() - done < 1.0, f"{base} still signs with the old key"
            await asyncio.sleep(0.05)
        assert kid not in before


async def test_housekeeping_runs_on_one_replica_at_a_time(ctx: Context) -> None:
    if ctx.db.dialect != "postgresql":
        pytest.skip("SQLite serves one process")
    async with ctx.db.transaction() as session:
        session.add(UsedAssertion(key="expired-one", expires_at=ctx.now() - 60))
    async with ctx.db.engine.connect() as other_replica:
        await other_replica.execute(text("SELECT pg_advisory_lock(:key)"),
                                    {"key": maintenance.MAINTENANCE_LOCK})
        await maintenance.run_once(ctx)  # another replica is at it: this one skips
        assert await _exists(ctx, "expired-one")
        await other_replica.execute(text("SELECT pg_advisory_unlock(:key)"),
                                    {"key": maintenance.MAINTENANCE_LOCK})
    await maintenance.run_once(ctx)
    assert not await _exists(ctx, "expired-one")
    await maintenance.run_once(ctx)  # and it let go of the lock after its round


async def _exists(ctx: Context, key: str) -> bool:
    async with ctx.db.transaction(read_only=True) as session:
        return (await session.scalar(select(UsedAssertion.key).where(
            UsedAssertion.key == key))) is not None
