"""Operators see what the service does: Prometheus /metrics (counters that move with real
traffic, summed over every worker process) and JSON log lines that carry the request's id,
which the response returns as `X-Request-ID`."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace

from idp.observability.logs import JsonFormatter
from idp.services.context import Context
from idp.settings import Settings
from tests.conftest import make_settings
from tests.helpers import (
    Flow,
    authorize,
    get_code,
    kill_group,
    login,
    make_app,
    make_user,
    redeem,
    wait_until_ready,
)
from tests.receiver import free_port

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? "
                    r"(?P<value>\S+)$")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        found[(match["name"], labels)] = float(match["value"])
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_counters_move_with_a_flow(client: httpx.AsyncClient, ctx: Context) -> None:
    before = await scrape(client)
    app = await make_app(ctx, grant_types=["authorization_code", "client_credentials"])
    await make_user(ctx)
    flow = Flow(app)
    page = await authorize(client, flow)
    refused = await login(client, page, password="not the password at all")
    assert refused.status_code == 200
    code = await get_code(client, flow)
    assert (await redeem(client, flow, code)).status_code == 200
    assert (await redeem(client, flow, code)).status_code == 400  # a replay
    assert (await client.post("/token", data={"grant_type": "client_credentials"},
                              headers=app.basic())).status_code == 200
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("idp_token_requests_total", grant_type="authorization_code",
                 outcome="issued") == 1
    assert moved("idp_token_requests_total", grant_type="authorization_code",
                 outcome="invalid_grant") == 1
    assert moved("idp_token_requests_total", grant_type="client_credentials",
                 outcome="issued") == 1
    assert moved("idp_signins_total", method="password", outcome="failure") == 1
    assert moved("idp_signins_total", method="password", outcome="success") == 1
    assert moved("idp_consent_changes_total", action="grant") >= 1
    # By route template, never by the path a client sent.
    assert moved("idp_http_requests_total", method="POST", route="/token", status="200") == 2
    assert moved("idp_http_requests_total", method="POST", route="/token", status="400") == 1
    assert moved("idp_http_request_duration_seconds_count", method="POST", route="/token") == 3
    assert "idp_outbox_backlog" in after and "idp_outbox_oldest_undelivered_age_seconds" in after
    assert value(after, "idp_db_pool_size", database=ctx.db.dialect) >= 1


async def test_the_pool_gauge_counts_the_connections_out_of_the_pool(
        settings: Settings, ctx: Context, app) -> None:  # type: ignore[no-untyped-def]
    """Out and back in, the gauge follows; another app on the same database (an embedding
    caller's, or a test's) does not make each checkout count twice or cost twice."""
    from prometheus_client import REGISTRY

    from idp.main import create_app

    pool = ctx.db.engine.sync_engine.pool
    listeners = len(pool.dispatch.checkout), len(pool.dispatch.checkin)
    create_app(settings, ctx=ctx)
    assert (len(pool.dispatch.checkout), len(pool.dispatch.checkin)) == listeners

    def in_use() -> float | None:
        return REGISTRY.get_sample_value("idp_db_pool_connections_in_use",
                                         {"database": ctx.db.dialect})

    async with ctx.db.engine.connect():
        assert in_use() == 1
        async with ctx.db.engine.connect():
            assert in_use() == 2
        assert in_use() == 1
    assert in_use() == 0
    # dispose() puts a new pool in place: the gauge reads that one.
    await ctx.db.engine.dispose()
    async with ctx.db.engine.connect():
        assert in_use() == 1
    assert in_use() == 0


async def test_paths_and_methods_clients_make_up_are_not_labels(
        client: httpx.AsyncClient) -> None:
    for n in range(3):
        await client.get(f"/no-such-page-{n}")
    await client.request("BREW", "/token")
    text = await scrape(client)
    assert "no-such-page" not in text
    assert "BREW" not in text
    assert value(text, "idp_http_requests_total", method="GET", route="unmatched",
                 status="404") >= 3
    assert value(text, "idp_http_requests_total", method="OTHER", route="/token",
                 status="405") >= 1


async def test_the_outbox_backlog_is_read_from_the_database(
        client: httpx.AsyncClient, ctx: Context) -> None:
    from idp.crypto.handles import new_handle
    from idp.store.models import OutboxMessage

    now = ctx.now()
    async with ctx.db.transaction() as session:
        for age in (30, 5):
            session.add(OutboxMessage(id=new_handle(16), kind="set", client_id=None,
                                      target_url="https://rp.example/events", payload={},
                                      created_at=now - age, next_attempt_at=now + 3600,
                                      attempts=0))
    text = await scrape(client)
    assert value(text, "idp_outbox_backlog") == 2
    assert value(text, "idp_outbox_oldest_undelivered_age_seconds") == 30


@pytest.fixture
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    overrides = getattr(request, "param", {})
    return make_settings(database_url, **overrides)


@pytest.mark.parametrize("settings", [{"metrics_token": "s3cret-scrape-token"}],
                         indirect=True)
async def test_a_metrics_token_is_required_when_set(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic czNjcmV0LXNjcmFwZS10b2tlbg=="}):
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "idp_http_requests_total" in await scrape(
        client, Authorization="Bearer s3cret-scrape-token")


@pytest.mark.parametrize("settings", [{"metrics_enabled": False}], indirect=True)
async def test_metrics_can_be_switched_off(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


async def test_every_response_names_its_request(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")
    assert re.fullmatch(r"[0-9a-f]{16}", first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    # A proxy's id is kept when it is a plain token...
    kept = await client.get("/health/live", headers={"X-Request-ID": "lb-7f3a.9:2"})
    assert kept.headers["x-request-id"] == "lb-7f3a.9:2"
    # ...and replaced when it could forge or flood a log line.
    for forged in ("a" * 65, 'x" "level":"ERROR', "id with spaces", ""):
        replaced = await client.get("/health/live", headers={"X-Request-ID": forged})
        assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


async def test_log_lines_are_json_with_the_request_id(client: httpx.AsyncClient) -> None:
    """The serving process's handler, with its formatter: each line is formatted as it is
    logged, inside the request it belongs to."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("idp.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        response = await client.get("/health/live", headers={"X-Request-ID": "trace-42"})
        other = await client.get("/no-such-page")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert (first["logger"], first["level"]) == ("idp.access", "INFO")
    assert first["request_id"] == response.headers["x-request-id"] == "trace-42"
    assert (first["method"], first["route"], first["path"], first["status"]) == (
        "GET", "/health/live", "/health/live", 200)
    assert isinstance(first["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert second["request_id"] == other.headers["x-request-id"] != "trace-42"
    assert (second["route"], second["status"]) == ("unmatched", 404)


class _RecordingTracer(trace.Tracer):
    """A configured OpenTelemetry tracer, as an SDK set up by the deployment would be: it
    keeps every span it is asked for, with the attributes it was given."""

    def __init__(self, started: list[dict[str, object]]) -> None:
        self.started = started

    def start_span(self, name: str, *args: object, **kwargs: object) -> trace.Span:
        self.started.append({"name": name, **dict(kwargs.get("attributes") or {})})
        return trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, *args: object, **kwargs: object
                              ) -> Iterator[trace.Span]:
        yield self.start_span(name, *args, **kwargs)


class _RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.started: list[dict[str, object]] = []

    def get_tracer(self, *args: object, **kwargs: object) -> trace.Tracer:
        return _RecordingTracer(self.started)


async def test_no_opentelemetry_span_carries_a_code_or_a_hint(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """With OpenTelemetry configured in the process (FASTAPI_OTEL_AUTO_CONFIGURE, or an SDK a
    wrapper set up), the framework's own spans would carry each request's query string:
    authorization codes, `state`, `login_hint`, `id_token_hint`. The app gives it nothing."""
    provider = _RecordingProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    assert trace.get_tracer_provider() is provider
    await make_user(ctx)
    flow = Flow(await make_app(ctx))
    code = await get_code(client, flow)
    tokens = (await redeem(client, flow, code)).json()
    await client.get("/authorize", params={"client_id": flow.app.client_id,
                                           "login_hint": "ana@example.com",
                                           "id_token_hint": tokens["id_token"]})
    await client.get("/userinfo", params={"access_token": tokens["access_token"]})
    assert provider.started == []


@dataclass
class Served:
    issuer: str
    client_id: str
    client_secret: str
    process: subprocess.Popen[str]
    metrics: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`idp serve --workers 2` on a SQLite file of its own, shared by the tests below (a
    server process is the expensive part). Run once, on the SQLite pass of the suite."""
    if os.environ.get("IDP_TEST_DATABASE_URL"):
        pytest.skip("needs no PostgreSQL: runs on the SQLite pass")
    home = tmp_path_factory.mktemp("served")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS"))}
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env.update(IDP_DATABASE_URL=f"sqlite+aiosqlite:///{home / 'idp.db'}", IDP_ISSUER=issuer,
               IDP_DEV_MODE="true", IDP_LOG_LEVEL="WARNING", IDP_SHUTDOWN_DRAIN_SECONDS="5",
               IDP_KEY_ENCRYPTION_SECRET="a-test-secret-that-is-long-enough-0123",
               PROMETHEUS_MULTIPROC_DIR=str(home / "metrics"))
    idp = str(Path(sys.executable).parent / "idp")
    subprocess.run([idp, "migrate"], env=env, capture_output=True, timeout=60, check=True)
    created = json.loads(subprocess.run(
        [idp, "clients", "create", "--name", "API", "--redirect-uri", "https://api.example/cb",
         "--grant-type", "client_credentials", "--scope", "orders:read", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=True).stdout)
    # Its own process group: a supervisor killed outright would leave its workers running.
    process = subprocess.Popen([idp, "serve", "--port", str(port), "--workers", "2"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        with httpx.Client(base_url=issuer, timeout=10) as http:
            wait_until_ready(http, process)
        yield Served(issuer, created["client_id"], created["client_secret"], process,
                     home / "metrics")
    finally:
        kill_group(process)


def workers_of(process: subprocess.Popen[str]) -> list[int]:
    """The supervisor's child processes now (to tell a worker that never served from one
    that died)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


async def cc_tokens(served: Served, count: int, http: httpx.AsyncClient | None = None
                    ) -> list[int | str]:
    """`count` client_credentials requests at once; each one's status, or its error."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=served.issuer, timeout=20))

        async def once() -> int | str:
            try:
                return (await http.post("/token", data={"grant_type": "client_credentials"},
                                        auth=(served.client_id, served.client_secret))
                        ).status_code
            except httpx.TransportError as error:
                return type(error).__name__

        return list(await asyncio.gather(*(once() for _ in range(count))))


async def test_workers_add_up_their_metrics(served: Served) -> None:
    """Requests land on either worker, and /metrics, answered by either, counts them all."""
    total = 40
    assert set(await cc_tokens(served, total)) == {200}
    # Until each worker has served some. The server is ready as soon as one worker is, so the
    # second may still be starting during the first burst. Then bursts, not single requests:
    # the workers share one listening socket, and a worker woken for a connection accepts all
    # that are waiting, so on an idle server the same worker can take every lone request
    # (seen in CI: one worker took every request for a minute); a second one is woken only for
    # connections that arrive while the first is busy. Bounded by time, not by a count.
    deadline = time.monotonic() + 60
    while len(list(served.metrics.glob("counter_*.db"))) < 2 and time.monotonic() < deadline:
        burst = await cc_tokens(served, 8)  # a fresh client: eight new connections
        assert set(burst) == {200}
        total += len(burst)
        await asyncio.sleep(0.05)
    seen = set()
    for _ in range(12):
        async with httpx.AsyncClient(base_url=served.issuer, timeout=10) as fresh:
            text = (await fresh.get("/metrics")).text  # a new connection: either worker
        seen.add(value(text, "idp_token_requests_total", grant_type="client_credentials",
                       outcome="issued"))
    assert seen == {float(total)}
    # Both workers served: each wrote counters of its own.
    counters = list(served.metrics.glob("counter_*.db"))
    assert len(counters) == 2, (counters, workers_of(served.process))


async def test_sigterm_drains_before_it_stops(served: Served) -> None:
    """Readiness turns 503 at once, every request in flight or arriving during the drain is
    answered, then the server stops."""
    async with httpx.AsyncClient(base_url=served.issuer, timeout=20) as kept, \
            httpx.AsyncClient(base_url=served.issuer, timeout=5,
                              limits=httpx.Limits(max_keepalive_connections=0)) as probe:
        assert (await probe.get("/health/ready")).status_code == 200
        in_flight = asyncio.create_task(cc_tokens(served, 60, kept))
        await asyncio.sleep(0.05)
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        statuses: list[int] = []
        # Probes until readiness has said 503 three times, well inside the drain: on a
        # loaded machine (CI's passes share two cores) the signal may take a moment to land.
        while statuses[-3:] != [503] * 3 and time.monotonic() - signalled < 2.5:
            statuses.append((await probe.get("/health/ready")).status_code)
            await asyncio.sleep(0.05)
        # Within the drain: readiness says go elsewhere, and keeps saying so once it has,
        # yet requests are still served.
        assert statuses[-3:] == [503] * 3, statuses
        assert set(statuses[statuses.index(503):]) == {503}, statuses
        during = await cc_tokens(served, 20)
        assert set(await in_flight) == {200}
        assert set(during) == {200}, during
        live = await probe.get("/health/live")
        assert live.status_code == 200
    returncode = await asyncio.to_thread(served.process.wait, 30)
    assert time.monotonic() - signalled >= 5  # IDP_SHUTDOWN_DRAIN_SECONDS
    assert returncode in (0, -signal.SIGTERM), returncode


async def test_a_stopping_dispatcher_finishes_the_delivery_it_began(ctx: Context) -> None:
    """Shutdown stops the outbox dispatcher between deliveries: the one under way completes
    and is recorded, so it is neither lost nor sent twice."""
    from sqlalchemy import select

    from idp.crypto.handles import new_handle
    from idp.notifications.dispatcher import Dispatcher
    from idp.notifications.senders import BACKCHANNEL_LOGOUT
    from idp.store.models import DeliveryAttempt, OutboxMessage

    app = await make_app(ctx, backchannel_logout_uri="https://rp.example/logout")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_app(request: httpx.Request) -> httpx.Response:
        started.set()
        await release.wait()
        return httpx.Response(200)

    now = ctx.now()
    message_id = new_handle(16)
    async with ctx.db.transaction() as session:
        session.add(OutboxMessage(
            id=message_id, kind=BACKCHANNEL_LOGOUT, client_id=app.client_id,
            target_url="https://rp.example/logout",
            payload={"claims": {"iss": ctx.settings.issuer, "aud": app.client_id,
                                "sub": "someone", "events": {}}},
            created_at=now, next_attempt_at=now, attempts=0))
    dispatcher = Dispatcher(ctx, transport=httpx.MockTransport(slow_app), allow_private=True)
    try:
        running = asyncio.create_task(dispatcher.run_forever(interval=60))
        await asyncio.wait_for(started.wait(), timeout=10)
        dispatcher.stop()
        await asyncio.sleep(0.05)
        assert not running.done()  # it waits for the app's answer...
        release.set()
        await asyncio.wait_for(running, timeout=10)  # ...then returns, not cancelled
    finally:
        await dispatcher.close()
    async with ctx.db.transaction(read_only=True) as session:
        message = await session.get(OutboxMessage, message_id)
        attempts = list(await session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.message_id == message_id)))
    assert message is not None and message.delivered_at is not None
    assert [a.status_code for a in attempts] == [200]


async def test_a_consent_change_is_counted_when_it_commits(ctx: Context) -> None:
    from prometheus_client import REGISTRY

    from idp.services.consent import ledger

    def counted() -> float:
        return REGISTRY.get_sample_value("idp_consent_changes_total", {"action": "grant"}) or 0.0

    entry = {"grant_id": "g-1", "client_id": "c-1", "user_id": "u-1", "action": "grant",
             "channel": "web", "gpc": False, "payload": {}}
    before = counted()
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            await ledger.append(ctx, session, **entry)
            raise RuntimeError("the change failed after its ledger entry")
    assert counted() == before  # rolled back: nothing happened, nothing counted
    async with ctx.db.transaction() as session:
        await ledger.append(ctx, session, **entry)
    assert counted() == before + 1


def test_the_metrics_directory_is_made_for_one_worker_and_emptied_for_several(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PROMETHEUS_MULTIPROC_DIR named but missing stopped a one-worker `idp serve` at its
    first metric (prometheus_client opens a file in it): it is made, and what an operator's
    other processes wrote there stays. Several workers start from an empty one, theirs or
    a new one, so an earlier run's counts are not added to this one's."""
    from idp.cli.serve import metrics_directory

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert metrics_directory(1) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    named = tmp_path / "not" / "there"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(named))
    assert metrics_directory(1) == named and named.is_dir()
    (named / "counter_123.db").write_bytes(b"another process's")
    assert metrics_directory(1) == named
    assert (named / "counter_123.db").exists()

    assert metrics_directory(2) == named
    assert list(named.iterdir()) == []

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    made = metrics_directory(2)
    assert made is not None and made.is_dir() and list(made.iterdir()) == []
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(made)
