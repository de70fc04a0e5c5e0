"""Dev mode (IDP_DEV_MODE): what it opens for a brand developer trying the provider from a
laptop, and that it opens it only there. Issue 11 item 7: a web app may register a plain-http
loopback redirect URI, matched exactly, port included (RFC 8252 §7.3's port wildcard is for
native apps)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from idp.main import create_app
from idp.services import InvalidInput
from idp.services.accounts import admin
from idp.services.context import Context, build_context
from idp.settings import Settings
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    csrf_token,
    follow_to_page,
    make_user,
    query_of,
    redeem,
    run_cli,
)

LAPTOP = "http://localhost:3000/callback"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, dev_mode=True)


@pytest.fixture
async def production(settings: Settings, ctx: Context, clock: FakeClock
                     ) -> AsyncIterator[httpx.AsyncClient]:
    """The same database served outside dev mode."""
    strict = build_context(make_settings(settings.database_url), clock=clock)
    app = create_app(strict.settings, ctx=strict)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ISSUER) as http:
            yield http
    finally:
        await strict.close()


async def code_at(browser: httpx.AsyncClient, flow: Flow) -> str:
    """Sign in and allow, as a browser would; the code from the redirect to the app."""
    page = await follow_to_page(browser, await browser.get("/authorize", params=flow.params()))
    assert urlsplit(str(page.url)).path.endswith("/login"), page.text
    signed_in = await browser.post(urlsplit(str(page.url)).path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    consent = await follow_to_page(browser, signed_in)
    assert urlsplit(str(consent.url)).path.endswith("/consent"), consent.text
    back = await browser.post(urlsplit(str(consent.url)).path, data={
        "csrf_token": csrf_token(consent.text), "decision": "allow"})
    assert back.status_code == 303, back.text
    location = back.headers["location"]
    assert location.startswith(flow.app.redirect_uri + "?"), location
    assert query_of(location)["state"] == flow.state
    return query_of(location)["code"]


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert "<code>invalid_request</code>" in response.text


async def test_a_web_app_on_a_laptop_registers_and_signs_in_in_dev_mode(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IDP_DEV_MODE", "true")
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "clients", "create", "--name",
                                   "Laptop shop", "--redirect-uri", LAPTOP, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["redirect_uris"] == [LAPTOP]
    shop = App(created["client_id"], created["client_secret"], LAPTOP)
    await make_user(ctx)
    flow = Flow(shop)
    tokens = await redeem(client, flow, await code_at(client, flow))
    assert tokens.status_code == 200, tokens.text
    # Matched exactly: no other port, host spelling, scheme or path.
    for other in ("http://localhost:3001/callback", "http://localhost/callback",
                  "http://127.0.0.1:3000/callback", "https://localhost:3000/callback",
                  "http://localhost:3000/callback/", "http://LOCALHOST:3000/callback",
                  "http://localhost:3000/c\tallback"):
        response = await client.get("/authorize", params=Flow(shop).params(
            redirect_uri=other, prompt="none"))
        assert_error_page(response)


@pytest.mark.parametrize(("uri", "other_port"), [
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1:9999/cb"),
    ("http://[::1]:8080/cb", "http://[::1]:9999/cb"),
    ("http://localhost/cb", "http://localhost:9999/cb"),
])
async def test_each_loopback_form_is_exact_for_a_web_app(client: httpx.AsyncClient,
                                                         ctx: Context, uri: str,
                                                         other_port: str) -> None:
    new = await admin.create_client(ctx, name="Laptop", redirect_uris=[uri])
    app = App(new.client.client_id, new.client_secret, uri)
    flow = Flow(app)
    answer = await client.get("/authorize", params=flow.params(prompt="none"))
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(uri + "?")
    assert query_of(answer.headers["location"])["error"] == "login_required"
    assert_error_page(await client.get("/authorize", params=Flow(app).params(
        redirect_uri=other_port, prompt="none")))


async def test_dev_mode_does_not_open_other_http_hosts(ctx: Context) -> None:
    for uri in ("http://shop.example/callback", "http://localhost.evil.example/callback",
                "http://10.0.0.5:3000/callback", "http://user@localhost:3000/callback"):
        with pytest.raises(InvalidInput):
            await admin.create_client(ctx, name="Laptop", redirect_uris=[uri])


async def test_outside_dev_mode_the_rule_holds(ctx: Context, settings: Settings,
                                               production: httpx.AsyncClient,
                                               clock: FakeClock) -> None:
    strict = build_context(make_settings(settings.database_url), clock=clock)
    try:
        with pytest.raises(InvalidInput, match="http redirect URIs are allowed only"):
            await admin.create_client(strict, name="Laptop", redirect_uris=[LAPTOP])
    finally:
        await strict.close()
    # A registration made in dev mode is not honoured by a server outside it: the code never
    # travels over plain http.
    new = await admin.create_client(ctx, name="Laptop", redirect_uris=[LAPTOP])
    app = App(new.client.client_id, new.client_secret, LAPTOP)
    assert_error_page(await production.get("/authorize", params=Flow(app).params()))
    assert_error_page(await production.get("/authorize", params=Flow(app).params(
        prompt="none")))
