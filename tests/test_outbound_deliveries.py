"""Deliveries to URLs that clients supply (back-channel logout tokens and security events
through the outbox) go through the SSRF-safe fetcher (issue 11 item 8; security.md §0 item 16):
outside dev mode only https to public addresses, connected to the address that was checked,
no redirects, no proxy from the environment. A refused delivery makes no connection at all
and is recorded in the outbox; in dev mode an app on this machine is reached."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update

from idp.notifications.dispatcher import Dispatcher
from idp.services.context import Context
from idp.store.models import Client, DeliveryAttempt, OutboxMessage
from tests.helpers import (
    App,
    Flow,
    fake_dns,
    get_code,
    make_app,
    make_user,
    redeem,
    unverified_claims,
)
from tests.receiver import Receiver

PUBLIC_IP = "93.184.216.34"


class Recorder(httpx.AsyncBaseTransport):
    """Stands for the network: records every request that would have left, answers 200."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.sent: list[httpx.Request] = []
        self.status, self.headers = status, headers or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return httpx.Response(self.status, headers=self.headers)


async def disconnected_app(client: httpx.AsyncClient, ctx: Context, target: str) -> App:
    """An app whose back-channel logout and event endpoints are `target`, which the customer
    has just disconnected through the Grant API: a logout token and two events wait in the
    outbox. The URL is set in the table, as a dynamic registration could set it: the delivery
    must hold on its own, whatever registration allowed."""
    await make_user(ctx)
    app = await make_app(ctx, grant_types=["authorization_code"],
                         backchannel_logout_uri="https://app.example/backchannel",
                         event_uri="https://app.example/events")
    async with ctx.db.transaction() as session:
        await session.execute(update(Client).where(Client.client_id == app.client_id).values(
            backchannel_logout_uri=target, event_uri=target))
    flow = Flow(app)
    tokens = (await redeem(client, flow, await get_code(client, flow))).json()
    grant_id = unverified_claims(tokens["access_token"])["consent"]["grant_id"]
    ended = await client.delete(f"/grants/{grant_id}",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert ended.status_code == 204
    return app


async def outbox(ctx: Context) -> list[tuple[OutboxMessage, list[DeliveryAttempt]]]:
    async with ctx.db.transaction() as session:
        messages = list(await session.scalars(select(OutboxMessage)))
        return [(m, list(await session.scalars(select(DeliveryAttempt).where(
            DeliveryAttempt.message_id == m.id)))) for m in messages]


@pytest.mark.parametrize(("target", "resolves_to"), [
    ("http://10.0.0.1/backchannel", None),
    ("https://10.0.0.1/backchannel", None),
    ("http://169.254.169.254/latest/meta-data/", None),
    ("https://169.254.169.254/latest/meta-data/", None),
    ("https://[::ffff:10.0.0.1]/backchannel", None),
    ("https://app.example/backchannel", "127.0.0.1"),
    ("https://app.example/backchannel", "10.1.2.3"),
    ("https://app.example/backchannel", "169.254.169.254"),
    ("http://127.0.0.1:9/backchannel", None),
])
async def test_a_delivery_inside_our_network_is_refused_without_a_connection(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch, target: str,
        resolves_to: str | None) -> None:
    looked_up = fake_dns(monkeypatch, resolves_to or PUBLIC_IP)
    await disconnected_app(client, ctx, target)
    network = Recorder()
    dispatcher = Dispatcher(ctx, timeout=2, transport=network)
    try:
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.close()
    assert network.sent == []
    if resolves_to is not None:
        assert "app.example" in looked_up
    recorded = await outbox(ctx)
    assert {m.kind for m, _ in recorded} == {"backchannel_logout", "security_event"}
    assert len(recorded) == 3
    for message, attempts in recorded:
        # Recorded, and given up at once: the same URL would be refused again.
        assert message.target_url == target
        assert message.delivered_at is None and message.abandoned_at is not None
        [attempt] = attempts
        assert attempt.status_code is None
        assert attempt.error is not None and attempt.error.startswith("refused: ")


async def test_a_public_address_is_pinned_and_a_redirect_not_followed(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection goes to the address that was checked, the name kept for Host and SNI
    (so a second DNS answer cannot swap in another address); a 3xx answer is a failure."""
    fake_dns(monkeypatch, PUBLIC_IP)
    await disconnected_app(client, ctx, "https://app.example/backchannel")
    network = Recorder(status=302, headers={"Location": "http://169.254.169.254/"})
    dispatcher = Dispatcher(ctx, timeout=2, transport=network)
    try:
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.close()
    assert len(network.sent) == 3  # one each, none to the redirect's target
    for request in network.sent:
        assert request.url.host == PUBLIC_IP
        assert request.url.path == "/backchannel"
        assert request.headers["host"] == "app.example"
        assert request.extensions["sni_hostname"] == "app.example"
    errors = {a.error for _, attempts in await outbox(ctx) for a in attempts}
    assert errors == {"HTTP 302"}


async def test_no_proxy_is_taken_from_the_environment(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy named in the environment would make the connection, unchecked: it is ignored."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    fake_dns(monkeypatch, PUBLIC_IP)
    await disconnected_app(client, ctx, "https://app.example/backchannel")
    network = Recorder()
    dispatcher = Dispatcher(ctx, timeout=2, transport=network)
    try:
        assert await dispatcher.run_once() == 3
    finally:
        await dispatcher.close()
    assert [r.url.host for r in network.sent] == [PUBLIC_IP] * 3


async def test_in_dev_mode_an_app_on_this_machine_is_reached(
        client: httpx.AsyncClient, ctx: Context) -> None:
    """How a developer (and this suite) runs an app's endpoint locally."""
    receiver = Receiver()
    await receiver.start()
    try:
        await disconnected_app(client, ctx, receiver.url)
        strict = Dispatcher(ctx, timeout=2)
        try:
            assert await strict.run_once() == 0
        finally:
            await strict.close()
        assert receiver.bodies == []
        async with ctx.db.transaction() as session:  # try again, as dev mode
            await session.execute(update(OutboxMessage).values(abandoned_at=None))
        dev = Dispatcher(ctx, timeout=2, allow_private=True)
        try:
            assert await dev.run_once() == 3
        finally:
            await dev.close()
    finally:
        await receiver.stop()
    assert len(receiver.bodies) == 3
