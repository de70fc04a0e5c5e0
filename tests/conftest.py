"""Shared fixtures. The suite runs against SQLite by default and against PostgreSQL when
IDP_TEST_DATABASE_URL names a postgresql+asyncpg URL (`.ci/run` does both).

Every test gets an empty, migrated database with fresh signing keys, an injected clock, and an
httpx client talking to the ASGI app under an https issuer (so `__Host-` cookies are exercised).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from idp.main import create_app
from idp.services import context as context_module
from idp.services.context import Context, build_context
from idp.settings import Settings
from idp.store import migrate
from idp.store.db import create_engine
from idp.store.models import Base

# Google, Apple and Facebook configured against their fakes, and browsers that reach them.
pytest_plugins = ["tests.upstreams", "tests.mailbox"]

ISSUER = "https://idp.test"
TEST_SECRET = "test-key-encryption-secret-0123456789abcdef"


class FakeClock:
    """Injected time: tests move it forward instead of sleeping."""

    def __init__(self, start: float | None = None) -> None:
        # Starts at the real time so independent JWT libraries accept iat/exp.
        self.value = float(int(time.time())) if start is None else start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported and collected stays for the whole run: settled out of the
    collector's sight, as a serving process does (idp.heap), so that each full collection
    walks only what the tests make (1-1.5 % of a test worker's CPU)."""
    from idp import heap

    heap.settle()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Headless Chromium runs on the SQLite pass only (CI time: the two passes share two
    cores). What a browser does (pages, scripts, cookies, CSP, focus) does not depend on the
    database; every flow those tests drive is also tested through HTTP on both databases.
    Tests marked `no_database` (parsing, upstream fakes, settings, the layers) would run the
    same on either pass, so they too run on the SQLite one only."""
    if not os.environ.get("IDP_TEST_DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="Chromium runs on the SQLite pass (CI time)")
    alike = pytest.mark.skip(reason="no database: runs on the SQLite pass (CI time)")
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(skip)
        elif item.get_closest_marker("no_database") is not None:
            # A test marked so must not reach a database at all: on this pass it would
            # silently test SQLite's answer again, or PostgreSQL's never.
            if "database_url" in getattr(item, "fixturenames", ()):
                raise pytest.UsageError(f"{item.nodeid} is marked no_database but uses one")
            item.add_marker(alike)


def _postgres_admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


async def _pg_execute(admin_url: str, statement: str) -> None:
    import asyncpg

    parsed = make_url(admin_url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username,
        password=parsed.password, database=parsed.database,
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for this test session (its own PostgreSQL database, or a file)."""
    base = os.environ.get("IDP_TEST_DATABASE_URL")
    if base and base.startswith("postgresql"):
        name = f"idp_test_{uuid.uuid4().hex[:10]}"
        admin = _postgres_admin_url(base)
        asyncio.run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        yield url
        asyncio.run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        path = tmp_path_factory.mktemp("db") / "idp.db"
        url = f"sqlite+aiosqlite:///{path}"
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session", autouse=True)
def drop_migrated_templates() -> Iterator[None]:
    """The PostgreSQL databases tests.helpers.throwaway_database copied migrated ones from."""
    yield
    from tests.helpers import MIGRATED_TEMPLATES

    for base, name in MIGRATED_TEMPLATES.items():
        if base.startswith("postgresql"):
            asyncio.run(_pg_execute(_postgres_admin_url(base),
                                    f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "issuer": ISSUER,
        "database_url": database_url,
        "key_encryption_secret": TEST_SECRET,
        "dev_mode": False,
        # Cheap argon2 parameters keep the suite fast; production defaults are tested apart.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "key_cache_seconds": 0,
        "background_tasks": False,
        "db_pool_size": 25,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


_KEY_POOL: dict[str, list[object]] = {}
_IMPORTED: dict[str, object] = {}


@pytest.fixture(autouse=True)
def reuse_signing_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """RSA key generation dominates test setup. Within a test every key is still new (a
    rotation gets a fresh kid); across tests the same keys are reused, since every test starts
    from empty tables."""
    from idp.crypto import keys as key_module
    from idp.services.tokens import signing_keys as key_service

    used: dict[str, int] = {}

    def pooled(alg: str):  # type: ignore[no-untyped-def]
        pool = _KEY_POOL.setdefault(alg, [])
        index = used.get(alg, 0)
        used[alg] = index + 1
        if index == len(pool):
            pool.append(key_module.generate_key(alg))
        return pool[index]

    monkeypatch.setattr(key_service, "generate_key", pooled)

    def imported(private_jwk: dict[str, Any]):  # type: ignore[no-untyped-def]
        # Parsing an RSA private key checks it (~40 ms): each test's new context loads the
        # same pooled keys again, so the parsed ones are kept for the session.
        found = _IMPORTED.get(json.dumps(private_jwk, sort_keys=True))
        if found is None:
            found = _IMPORTED[json.dumps(private_jwk, sort_keys=True)] = \
                key_module.import_private_key(private_jwk)
        return found

    monkeypatch.setattr(key_service, "import_private_key", imported)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    """The suite's settings; one object for the session (Settings is frozen, and reading the
    environment into it costs some 5 ms a test). Modules override it with their own."""
    return make_settings(database_url)


async def _empty_tables(ctx: Context) -> None:
    """Every table emptied, in one round trip: a statement per table (some sixty) had been
    a tenth of a typical test's time."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    deletes = "".join(f'DELETE FROM "{name}"; ' for name in tables)  # noqa: S608 (ours)
    async with ctx.db.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        if ctx.db.dialect == "postgresql":
            # Replica mode switches off triggers for this transaction (the ledger's
            # append-only guard, and the foreign-key checks): a DELETE per table then empties
            # a test's few rows far faster than TRUNCATE, which rewrites every table's files.
            # One simple-protocol query: asyncpg runs the statements in it together.
            await raw.execute("BEGIN; SET LOCAL session_replication_role = replica; "
                              f"{deletes}COMMIT;")
        else:
            # The ledger's append-only triggers stand aside while the test database is emptied.
            cursor = await raw.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'consent_ledger'")
            triggers = list(await cursor.fetchall())
            drops = "".join(f'DROP TRIGGER IF EXISTS "{name}"; ' for name, _ in triggers)
            creates = "".join(f"{statement}; " for _, statement in triggers)
            await raw.executescript(f"BEGIN IMMEDIATE; {drops}{deletes}{creates}COMMIT;")


# One engine per database URL for the session's `ctx` fixtures. Each test still gets its own
# connections (the context's close disposes the pool, and the next test, on its own event
# loop, opens new ones), but SQLAlchemy keeps the compiled statements per engine: compiling
# every statement again in each test's new engine was a fifth of the CPU of tests that sign
# in through the pages (7 % over a wider mix of test files).
_ENGINES: dict[tuple[str, int], AsyncEngine] = {}


def _shared_engine(url: str, pool_size: int) -> AsyncEngine:
    engine = _ENGINES.get((url, pool_size))
    if engine is None:
        engine = _ENGINES[(url, pool_size)] = create_engine(url, pool_size)
    return engine


@pytest.fixture
async def ctx(settings: Settings, clock: FakeClock,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Context]:
    with monkeypatch.context() as patch:
        patch.setattr(context_module, "create_engine", _shared_engine)
        context = build_context(settings, clock=clock)
    await _empty_tables(context)
    await context.keys.ensure_keys()
    try:
        yield context
    finally:
        await context.close()


# Apps the `app` fixture built, by the value of the settings they were built from. FastAPI
# builds an app's routes (their dependencies, their handlers) on the first request through
# each router: some 200 ms of CPU for a test that reaches seven routers, which had been a
# tenth of the test workers' CPU while modules whose settings fixture makes new (equal)
# settings for each test built an app per test. Tests on equal settings share one app, each
# with its own context in `app.state.ctx`, the one thing a request reads from the app that a
# test changes. The middlewares' per-process memos (a session's or an interaction's language)
# carry over, keyed by ids each test makes at random. A test that builds an app itself (to
# change it, as test_hot_routes does) gets its own. An app served with its lifespan (the
# browser tests' uvicorn) takes the context it was built with: those tests' settings name a
# new port each time, so their apps are never shared.
_APPS: dict[str, Any] = {}
_APPS_KEPT = 4


def settings_key(settings: Settings) -> str:
    """Equal for equal settings, secrets included (their dump hides them)."""
    return repr([(name, value.get_secret_value() if isinstance(value, SecretStr) else value)
                 for name, value in settings])


@pytest.fixture
def app(settings: Settings, ctx: Context):  # type: ignore[no-untyped-def]
    key = settings_key(settings)
    built = _APPS.pop(key, None)
    if built is None:
        built = create_app(settings, ctx=ctx)
        while len(_APPS) >= _APPS_KEPT:
            del _APPS[next(iter(_APPS))]  # the least recently used
    _APPS[key] = built
    built.state.ctx = ctx
    ctx.db.observe_pool()
    return built


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http


@pytest.fixture
async def new_browser(app):  # type: ignore[no-untyped-def]
    """A factory of independent browsers (cookie jars) against the same app."""
    opened: list[httpx.AsyncClient] = []

    def factory() -> httpx.AsyncClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
        opened.append(http)
        return http

    yield factory
    for http in opened:
        await http.aclose()


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless Chromium for the whole session; each browser test connects to it over the
    DevTools protocol and works in contexts of its own (as isolated as a new browser: separate
    cookies and storage), instead of starting a browser per test."""
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    profile = tmp_path_factory.mktemp("chromium")
    process = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", *CHROMIUM_ARGS, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        endpoint = None
        while endpoint is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            if line.startswith("DevTools listening on "):
                endpoint = line.removeprefix("DevTools listening on ").strip()
        if endpoint is None:
            raise RuntimeError("Chromium did not open its DevTools endpoint")
        # Keep draining its log so a chatty browser never blocks on a full pipe.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
