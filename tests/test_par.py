"""Pushed authorization requests (RFC 9126, issue 13 item 3): the request goes to /par over
the back channel, the browser carries only client_id and a request_uri good for one use in
60 s, and a client (or the whole server) can be set to accept nothing else."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from idp.services import maintenance
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import PushedRequest
from tests.conftest import ISSUER, FakeClock
from tests.helpers import (
    App,
    Flow,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
    served,
)
from tests.test_admin_api import admin_app, bearer, token_of


async def push(client: httpx.AsyncClient, flow: Flow, headers: dict[str, str] | None = None,
               **extra: str | None) -> httpx.Response:
    data = {k: v for k, v in flow.params(**extra).items() if k != "client_id"}
    if flow.app.client_secret is None:
        data["client_id"] = flow.app.client_id
    return await client.post("/par", data=data,
                             headers=flow.app.basic() if headers is None and
                             flow.app.client_secret else (headers or {}))


async def pushed_uri(client: httpx.AsyncClient, flow: Flow, **extra: str | None) -> str:
    response = await push(client, flow, **extra)
    assert response.status_code == 201, response.text
    return str(response.json()["request_uri"])


async def authorize_pushed(browser: httpx.AsyncClient, client_id: str, request_uri: str,
                           **extra: str) -> httpx.Response:
    response = await browser.get("/authorize", params={
        "client_id": client_id, "request_uri": request_uri, **extra})
    return await follow_to_page(browser, response)


def assert_error_page(response: httpx.Response, error: str) -> None:
    assert response.status_code == 400, response.text
    assert error in response.text
    assert "location" not in response.headers


async def code_from(browser: httpx.AsyncClient, response: httpx.Response) -> dict[str, str]:
    if urlsplit(str(response.url)).path.endswith("/login"):
        response = await login(browser, response)
    if urlsplit(str(response.url)).path.endswith("/consent"):
        from tests.helpers import approve
        response = await approve(browser, response)
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx)


async def test_discovery_names_the_endpoint(client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = (await client.get(path)).json()
        assert metadata["pushed_authorization_request_endpoint"] == f"{ISSUER}/par"
        assert metadata["require_pushed_authorization_requests"] is False


async def test_a_pushed_request_signs_the_customer_in(client: httpx.AsyncClient,
                                                      shop: App) -> None:
    flow = Flow(shop)
    response = await push(client, flow)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    # The browser carries the reference only; what was pushed decides, not the query.
    page = await authorize_pushed(client, shop.client_id, body["request_uri"],
                                  scope="openid address", state="from-the-query")
    query = await code_from(client, page)
    assert query["state"] == flow.state and query["iss"] == ISSUER
    tokens = await redeem(client, flow, query["code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["scope"] == "openid profile email"


async def test_a_public_client_pushes_with_its_client_id(client: httpx.AsyncClient,
                                                         ctx: Context) -> None:
    await make_user(ctx)
    app = await make_app(ctx, client_type="public", application_type="native",
                         redirect_uri="com.example.app:/callback")
    flow = Flow(app)
    request_uri = await pushed_uri(client, flow)
    query = await code_from(client, await authorize_pushed(client, app.client_id, request_uri))
    assert (await redeem(client, flow, query["code"])).status_code == 200


async def test_a_request_uri_is_used_once(client: httpx.AsyncClient, shop: App) -> None:
    flow = Flow(shop)
    request_uri = await pushed_uri(client, flow)
    await code_from(client, await authorize_pushed(client, shop.client_id, request_uri))
    assert_error_page(await authorize_pushed(client, shop.client_id, request_uri),
                      "invalid_request_uri")


async def test_two_browsers_racing_for_one_request_uri_get_it_once(
        client: httpx.AsyncClient, shop: App, new_browser: Any) -> None:
    request_uri = await pushed_uri(client, Flow(shop))
    answers = await asyncio.gather(*(
        new_browser().get("/authorize", params={"client_id": shop.client_id,
                                                "request_uri": request_uri})
        for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [303] + [400] * 4


async def test_a_request_uri_expires_after_60_seconds(
        client: httpx.AsyncClient, ctx: Context, shop: App, clock: FakeClock) -> None:
    late = await pushed_uri(client, Flow(shop))
    in_time = await pushed_uri(client, Flow(shop))
    clock.advance(59)
    assert (await client.get("/authorize", params={
        "client_id": shop.client_id, "request_uri": in_time})).status_code == 303
    clock.advance(1)
    assert_error_page(await authorize_pushed(client, shop.client_id, late),
                      "invalid_request_uri")
    # Maintenance forgets what expired (the one redeemed in time is gone already).
    await maintenance.run_once(ctx)
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(PushedRequest)) == 0


async def test_another_client_cannot_redeem_it(client: httpx.AsyncClient, ctx: Context,
                                               shop: App) -> None:
    other = await make_app(ctx, name="Other")
    request_uri = await pushed_uri(client, Flow(shop))
    assert_error_page(await authorize_pushed(client, other.client_id, request_uri),
                      "invalid_request_uri")
    # Still its own client's.
    assert (await client.get("/authorize", params={
        "client_id": shop.client_id, "request_uri": request_uri})).status_code == 303


@pytest.mark.parametrize("params", [
    {"request_uri": "urn:ietf:params:oauth:request_uri:made-up"},
    {"request_uri": "urn:ietf:params:oauth:request_uri:"},
    {"request_uri": "urn:ietf:params:oauth:request_uri:" + "x" * 300},
    {"request_uri": "urn:ietf:params:oauth:request_uri:\x00"},
])
async def test_a_request_uri_we_did_not_issue_is_refused(
        client: httpx.AsyncClient, shop: App, params: dict[str, str]) -> None:
    response = await client.get("/authorize", params={"client_id": shop.client_id, **params})
    assert_error_page(response, "invalid_request_uri")


async def test_a_request_uri_needs_the_client_id(client: httpx.AsyncClient, shop: App) -> None:
    request_uri = await pushed_uri(client, Flow(shop))
    assert_error_page(await client.get("/authorize", params={"request_uri": request_uri}),
                      "invalid_request")
    assert (await client.get("/authorize", params={
        "client_id": shop.client_id, "request_uri": request_uri})).status_code == 303


@pytest.mark.parametrize(("change", "status", "error"), [
    ({"redirect_uri": "https://evil.example/callback"}, 400, "invalid_request"),
    ({"redirect_uri": None}, 400, "invalid_request"),
    ({"response_type": "token"}, 400, "unsupported_response_type"),
    ({"scope": "openid admin:write"}, 400, "invalid_scope"),
    ({"code_challenge": None, "code_challenge_method": None}, 400, "invalid_request"),
    ({"code_challenge_method": "plain"}, 400, "invalid_request"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, 400, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, 400, "request_not_supported"),
    ({"prompt": "sometimes"}, 400, "invalid_request"),
])
async def test_a_push_that_breaks_a_rule_is_answered_as_json(
        client: httpx.AsyncClient, shop: App, change: dict[str, str | None], status: int,
        error: str) -> None:
    response = await push(client, Flow(shop), **change)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_a_push_needs_the_client_authenticated(client: httpx.AsyncClient,
                                                     shop: App) -> None:
    flow = Flow(shop)
    wrong = App(shop.client_id, "not-the-secret", shop.redirect_uri)
    for headers in ({}, wrong.basic()):
        data = {**flow.params(), "client_id": shop.client_id}
        refused = await client.post("/par", data=data, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    other = App("someone-else", shop.client_secret, shop.redirect_uri)
    mismatch = await client.post("/par", data={**flow.params(), "client_id": other.client_id},
                                 headers=shop.basic())
    assert mismatch.status_code == 400 and mismatch.json()["error"] == "invalid_request"
    repeated = await client.post("/par", content=b"scope=openid&scope=email",
                                 headers={**shop.basic(), "Content-Type":
                                          "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    as_json = await client.post("/par", json=flow.params(), headers=shop.basic())
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    assert (await client.get("/par")).status_code == 405


async def test_a_client_can_be_held_to_pushed_requests(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    changed = await client.patch(f"/admin/v1/clients/{shop.client_id}",
                                 json={"require_par": True}, headers=ops)
    assert changed.status_code == 200 and changed.json()["require_par"] is True
    flow = Flow(shop)
    direct = await client.get("/authorize", params=flow.params())
    assert direct.status_code == 303
    refused = query_of(direct.headers["location"])
    assert refused["error"] == "invalid_request" and refused["state"] == flow.state
    assert "RFC 9126" in refused["error_description"]
    query = await code_from(client, await authorize_pushed(
        client, shop.client_id, await pushed_uri(client, flow)))
    assert (await redeem(client, flow, query["code"])).status_code == 200


async def test_the_cli_sets_it_at_creation(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.helpers import run_cli
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "create", "--name", "TV",
                                 "--redirect-uri", "https://tv.example/cb", "--require-par",
                                 "--json")
    assert code == 0
    created = json.loads(out)
    assert created["require_pushed_authorization_requests"] is True
    assert (await admin.get_client(ctx, created["client_id"])).require_par is True


async def test_the_server_can_require_them_of_every_client(
        settings: Settings, ctx: Context, clock: FakeClock, shop: App) -> None:
    async with served(settings, clock, require_pushed_authorization_requests=True) as (http, _):
        metadata = (await http.get("/.well-known/openid-configuration")).json()
        assert metadata["require_pushed_authorization_requests"] is True
        flow = Flow(shop)
        direct = await http.get("/authorize", params=flow.params())
        assert query_of(direct.headers["location"])["error"] == "invalid_request"
        response = await http.get("/authorize", params={
            "client_id": shop.client_id, "request_uri": await pushed_uri(http, flow)})
        assert response.status_code == 303
        assert urlsplit(response.headers["location"]).path.startswith("/interaction/")


async def test_self_registered_clients_can_ask_for_it(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration="open") as (http, _):
        response = await http.post("/register", json={
            "redirect_uris": ["https://app.example/callback"],
            "require_pushed_authorization_requests": True})
        assert response.status_code == 201, response.text
        assert response.json()["require_pushed_authorization_requests"] is True
        assert (await admin.get_client(ctx, response.json()["client_id"])).require_par


async def test_the_cli_changes_it_later_under_the_same_rules(
        client: httpx.AsyncClient, ctx: Context, shop: App, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.helpers import run_cli
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 shop.client_id, "--require-par", "--json")
    assert code == 0 and json.loads(out)["require_pushed_authorization_requests"] is True
    direct = await client.get("/authorize", params=Flow(shop).params())
    assert query_of(direct.headers["location"])["error"] == "invalid_request"
    code, _, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                               shop.client_id, "--no-require-par")
    assert code == 0 and not (await admin.get_client(ctx, shop.client_id)).require_par
    # The registration rules hold, and nothing or no one is refused clearly.
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 shop.client_id, "--redirect-uri", "http://app.example/cb")
    assert code == 2 and "http redirect URIs" in err
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "clients", "update", "nobody",
                                 "--name", "x")
    assert code == 2 and "no client nobody" in err
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 shop.client_id)
    assert code == 2 and "nothing to change" in err
