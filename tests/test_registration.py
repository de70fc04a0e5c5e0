"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), off by
default, open or gated by initial access tokens from the admin API (issue 14 item 3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from idp.services import maintenance
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import InitialAccessToken
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem, run_cli, served
from tests.test_admin_api import admin_app, assert_bearer_error, bearer, token_of

WEB = {"client_name": "Partner shop", "redirect_uris": ["https://app.example/callback"],
       "grant_types": ["authorization_code", "refresh_token"],
       "scope": "openid profile email offline_access"}
NATIVE = {"client_name": "Speaker app", "application_type": "native",
          "redirect_uris": ["com.example.speaker:/callback"],
          "token_endpoint_auth_method": "none", "scope": "openid profile"}

DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, registration="open")


def assert_refused(response: httpx.Response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"


async def client_ids(ctx: Context) -> list[str]:
    from idp.services.accounts import admin

    return [c.client_id for c in await admin.list_clients(ctx)]


async def test_off_by_default(settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration="off") as (http, _):
        for path in DISCOVERY:
            assert "registration_endpoint" not in (await http.get(path)).json()
        assert_refused(await http.post("/register", json=WEB), "not_found", 404)
        assert_refused(await http.get("/register/abc", headers=bearer("x")), "not_found", 404)
        assert_refused(await http.delete("/register/abc", headers=bearer("x")), "not_found", 404)
    assert await client_ids(ctx) == []
    assert Settings(issuer=ISSUER, dev_mode=True).registration == "off"


async def test_a_registered_web_app_signs_a_customer_in(client: httpx.AsyncClient,
                                                        ctx: Context) -> None:
    for path in DISCOVERY:
        assert (await client.get(path)).json()["registration_endpoint"] == f"{ISSUER}/register"
    response = await client.post("/register", json={**WEB, "client_uri": "https://x.example/",
                                                    "unheard_of": 1})
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_name"] == "Partner shop"
    assert body["redirect_uris"] == WEB["redirect_uris"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591 §2 default
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["scope"] == WEB["scope"]
    assert body["client_secret_expires_at"] == 0
    assert body["client_id_issued_at"] == ctx.now()
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert len(body["registration_access_token"]) >= 43
    # What is not kept is left out of the answer (§3.2.1), unknown fields ignored (§2).
    assert "client_uri" not in body and "unheard_of" not in body
    app = App(body["client_id"], body["client_secret"], WEB["redirect_uris"][0])
    await make_user(ctx)
    flow = Flow(app)
    tokens = await redeem(client, flow, await get_code(client, flow, scope="openid email"))
    assert tokens.status_code == 200, tokens.text
    assert "id_token" in tokens.json()
    # Self-registered clients use PKCE, always (RFC 9700 §2.1.1).
    without = await client.get("/authorize", params=Flow(app).params(
        code_challenge=None, code_challenge_method=None))
    assert without.status_code == 303 and "error=invalid_request" in without.headers["location"]
    events = (await client.get("/admin/v1/audit-events", params={"target_id": app.client_id},
                               headers=await _ops(client, ctx))).json()
    assert [(e["action"], e["actor"]) for e in events] == [("client.create", "registration")]


async def _ops(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    return bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))


async def test_a_native_public_app_gets_no_secret_and_uses_pkce(
        client: httpx.AsyncClient, ctx: Context) -> None:
    response = await client.post("/register", json=NATIVE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["application_type"] == "native"
    assert body["token_endpoint_auth_method"] == "none"
    await make_user(ctx)
    flow = Flow(App(body["client_id"], None, NATIVE["redirect_uris"][0]))
    tokens = await redeem(client, flow, await get_code(client, flow, scope="openid profile"))
    assert tokens.status_code == 200, tokens.text


@pytest.mark.parametrize(("metadata", "error"), [
    ({**WEB, "redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": ["https://*.example/cb"]}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": []}, "invalid_redirect_uri"),
    ({k: v for k, v in WEB.items() if k != "redirect_uris"}, "invalid_redirect_uri"),
    ({**WEB, "redirect_uris": "https://app.example/callback"}, "invalid_client_metadata"),
    ({**WEB, "redirect_uris": [7]}, "invalid_client_metadata"),
    ({**WEB, "id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
    ({**WEB, "id_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    ({**WEB, "token_endpoint_auth_signing_alg": "HS256"}, "invalid_client_metadata"),
    ({**WEB, "grant_types": ["client_credentials"], "redirect_uris": []},
     "invalid_client_metadata"),
    ({**WEB, "grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({**WEB, "response_types": ["token"]}, "invalid_client_metadata"),
    ({**WEB, "response_types": ["code"], "grant_types": ["refresh_token"]},
     "invalid_client_metadata"),
    ({**WEB, "scope": "openid admin:write"}, "invalid_client_metadata"),
    ({**WEB, "scope": "openid orders:read"}, "invalid_client_metadata"),
    ({**WEB, "scope": ""}, "invalid_client_metadata"),
    ({**WEB, "scope": ["openid"]}, "invalid_client_metadata"),
    ({**WEB, "scope": "openid " * 300}, "invalid_client_metadata"),
    ({**WEB, "client_name": {"en": "x"}}, "invalid_client_metadata"),
    ({**WEB, "application_type": "desktop"}, "invalid_client_metadata"),
    ({**WEB, "jwks": "not a key set"}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_uri": "http://app.example/logout"}, "invalid_client_metadata"),
    ({**WEB, "backchannel_logout_session_required": "yes"}, "invalid_client_metadata"),
    ({**WEB, "post_logout_redirect_uris": ["https://app.example/#x"]},
     "invalid_client_metadata"),
    ({**NATIVE, "redirect_uris": ["https://app.example/callback"],
      "application_type": "native", "token_endpoint_auth_method": "none",
      "grant_types": ["authorization_code", "client_credentials"]},
     "invalid_client_metadata"),
    ({**WEB, "software_statement": "eyJhbGciOiJSUzI1NiJ9.e30.sig"},
     "unapproved_software_statement"),
])
async def test_metadata_that_breaks_a_rule_registers_nothing(
        client: httpx.AsyncClient, ctx: Context, metadata: dict[str, Any], error: str) -> None:
    response = await client.post("/register", json=metadata)
    assert_refused(response, error)
    assert response.json()["error_description"]
    assert await client_ids(ctx) == []


@pytest.mark.parametrize(("content", "content_type"), [
    (b"client_name=x", "application/x-www-form-urlencoded"),
    (b"{not json", "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"[]", "application/json"),
    (b'"https://app.example/callback"', "application/json"),
    (b"null", "application/json"),
    (json.dumps(WEB).encode(), "text/plain"),
])
async def test_a_body_that_is_no_json_object_is_refused(
        client: httpx.AsyncClient, ctx: Context, content: bytes, content_type: str) -> None:
    response = await client.post("/register", content=content,
                                 headers={"Content-Type": content_type})
    assert_refused(response, "invalid_client_metadata")
    assert await client_ids(ctx) == []


async def test_an_oversized_registration_is_refused_unread(client: httpx.AsyncClient,
                                                           ctx: Context) -> None:
    huge = {**WEB, "client_name": "x" * 70_000}
    assert (await client.post("/register", json=huge)).status_code == 413
    assert await client_ids(ctx) == []


async def test_the_operator_policy_decides_grant_types_and_scopes(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration_grant_types=("client_credentials",),
                      registration_scopes=("orders:read",)) as (http, _):
        assert_refused(await http.post("/register", json=WEB), "invalid_client_metadata")
        api = {"client_name": "Orders sync", "grant_types": ["client_credentials"],
               "scope": "orders:read"}
        response = await http.post("/register", json=api)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["response_types"] == [] and body["redirect_uris"] == []
        app = App(body["client_id"], body["client_secret"], "")
        token = await http.post("/token", data={"grant_type": "client_credentials"},
                                headers=app.basic())
        assert token.status_code == 200 and token.json()["scope"] == "orders:read"
    # An app that registers itself never gets near the admin API.
    with pytest.raises(ValueError, match="admin scope"):
        make_settings("sqlite+aiosqlite://", registration_scopes=("openid", "admin:read"))


async def test_registrations_are_capped_per_network(settings: Settings, ctx: Context,
                                                    clock: FakeClock) -> None:
    async with served(settings, clock, "203.0.113.5", registration_per_hour=3) as (http, _):
        statuses = [(await http.post("/register", json=NATIVE)).status_code for _ in range(3)]
        assert statuses == [201, 201, 201]
        # Refused ones count too: the cap is on requests, not on successes.
        held = await http.post("/register", json={**NATIVE, "redirect_uris": []})
        assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    async with served(settings, clock, "203.0.113.77", registration_per_hour=3) as (http, _):
        assert (await http.post("/register", json=NATIVE)).status_code == 429  # same /24
    async with served(settings, clock, "198.51.100.1", registration_per_hour=3) as (http, _):
        assert (await http.post("/register", json=NATIVE)).status_code == 201
    clock.advance(3600)
    async with served(settings, clock, "203.0.113.5", registration_per_hour=3) as (http, _):
        assert (await http.post("/register", json=NATIVE)).status_code == 201
    assert len(await client_ids(ctx)) == 5


# --- gated by initial access tokens -------------------------------------------------------


async def test_initial_access_tokens_gate_registration(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration="token") as (http, gated):
        ops = await _ops(http, gated)
        for headers in ({}, bearer("guessed"), {"Authorization": "Basic eDp5"}):
            assert_bearer_error(await http.post("/register", json=NATIVE, headers=headers),
                                401, "invalid_token")
        issued = await http.post("/admin/v1/registration-tokens", headers=ops,
                                 json={"uses": 2, "expires_in": 3600, "note": "TV partner"})
        assert issued.status_code == 201, issued.text
        assert issued.headers["cache-control"] == "no-store"
        grant = issued.json()
        assert grant["uses_left"] == 2 and grant["expires_at"] == ctx.now() + 3600
        initial = bearer(grant["token"])
        # A refused registration spends no use.
        assert_refused(await http.post("/register", json={**NATIVE, "redirect_uris": []},
                                       headers=initial), "invalid_redirect_uri")
        first = await http.post("/register", json=NATIVE, headers=initial)
        second = await http.post("/register", json=WEB, headers=initial)
        assert (first.status_code, second.status_code) == (201, 201)
        assert_bearer_error(await http.post("/register", json=NATIVE, headers=initial), 401,
                            "invalid_token")
        listed = (await http.get("/admin/v1/registration-tokens", headers=ops)).json()
        assert [(t["id"], t["uses_left"], t["note"]) for t in listed] == [
            (grant["id"], 0, "TV partner")]
        assert "token" not in listed[0]
        events = (await http.get("/admin/v1/audit-events", headers=ops,
                                 params={"target_id": first.json()["client_id"]})).json()
        assert events[0]["actor"] == f"registration:{grant['id']}"


async def test_an_expired_or_revoked_initial_token_registers_nothing(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration="token") as (http, gated):
        ops = await _ops(http, gated)
        expiring = (await http.post("/admin/v1/registration-tokens", headers=ops,
                                    json={"uses": 5, "expires_in": 60})).json()
        revoked = (await http.post("/admin/v1/registration-tokens", headers=ops,
                                   json={"uses": 5})).json()
        assert (await http.delete(f"/admin/v1/registration-tokens/{revoked['id']}",
                                  headers=ops)).status_code == 204
        assert_refused(await http.delete(f"/admin/v1/registration-tokens/{revoked['id']}",
                                         headers=ops), "not_found", 404)
        assert_bearer_error(await http.post("/register", json=NATIVE,
                                            headers=bearer(revoked["token"])),
                            401, "invalid_token")
        clock.advance(60)
        assert_bearer_error(await http.post("/register", json=NATIVE,
                                            headers=bearer(expiring["token"])),
                            401, "invalid_token")
        assert (await http.get("/admin/v1/registration-tokens", headers=ops)).json() == []
        await maintenance.run_once(gated)
        async with gated.db.transaction() as session:
            # Forgotten by maintenance: the expired token (the revoked one was deleted).
            assert await session.scalar(
                select(func.count()).select_from(InitialAccessToken)) == 0
        actions = [e["action"] for e in (await http.get("/admin/v1/audit-events",
                                                          headers=ops)).json()]
        assert actions.count("registration_token.issue") == 2
        assert "registration_token.revoke" in actions
    assert len(await client_ids(ctx)) == 1  # the admin client alone


async def test_the_last_use_of_an_initial_token_goes_to_one_registration(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    async with served(settings, clock, registration="token") as (http, gated):
        ops = await _ops(http, gated)
        one = (await http.post("/admin/v1/registration-tokens", headers=ops,
                               json={"uses": 1})).json()
        answers = await asyncio.gather(*(
            http.post("/register", json=NATIVE, headers=bearer(one["token"]))
            for _ in range(6)))
        assert sorted(r.status_code for r in answers) == [201] + [401] * 5


@pytest.mark.parametrize("body", [{"uses": 0}, {"uses": 1001}, {"expires_in": 59},
                                  {"expires_in": 31 * 86_400}, {"note": "x" * 201},
                                  {"uses": "many"}, {"scope": "admin:write"}])
async def test_initial_tokens_are_issued_within_bounds(
        client: httpx.AsyncClient, ctx: Context, body: dict[str, Any]) -> None:
    response = await client.post("/admin/v1/registration-tokens", json=body,
                                 headers=await _ops(client, ctx))
    assert_refused(response, "invalid_request")


async def test_initial_tokens_need_an_admin(client: httpx.AsyncClient, ctx: Context) -> None:
    reader = bearer(await token_of(client, await admin_app(ctx, ["admin:read"])))
    assert_bearer_error(await client.post("/admin/v1/registration-tokens", json={}), 401,
                        "invalid_token")
    assert_bearer_error(await client.post("/admin/v1/registration-tokens", json={},
                                          headers=reader), 403, "insufficient_scope")
    assert (await client.get("/admin/v1/registration-tokens", headers=reader)).status_code == 200


async def test_the_cli_issues_the_same_tokens(
        settings: Settings, ctx: Context, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "admin", "registration-token",
                                 "--uses", "1", "--note", "cli", "--json")
    assert code == 0
    issued = json.loads(out)
    async with served(settings, clock, registration="token") as (http, _):
        assert (await http.post("/register", json=NATIVE, headers=bearer(issued["token"]))
                ).status_code == 201
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "admin", "registration-token",
                                 "--uses", "0")
    assert code == 2 and "uses must be between" in err


# --- RFC 7592: the client manages its own registration ------------------------------------


async def _register(client: httpx.AsyncClient, metadata: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/register", json=metadata)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_client_reads_its_registration_with_its_token(
        client: httpx.AsyncClient, ctx: Context) -> None:
    body = await _register(client, WEB)
    uri, token = body["registration_client_uri"].removeprefix(ISSUER), body[
        "registration_access_token"]
    read = await client.get(uri, headers=bearer(token))
    assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
    expected = {k: v for k, v in body.items()
                if k not in ("client_secret", "client_secret_expires_at")}
    assert read.json() == expected  # never the secret again
    other = await _register(client, NATIVE)
    operator_app = await make_app(ctx)
    for path, headers in ((uri, {}), (uri, bearer("wrong")),
                          (uri, bearer(other["registration_access_token"])),
                          (f"/register/{operator_app.client_id}", bearer(token)),
                          ("/register/unknown", bearer(token)),
                          ("/register/" + "x" * 200, bearer(token))):
        assert_bearer_error(await client.get(path, headers=headers), 401, "invalid_token")


async def test_a_client_replaces_its_registration(client: httpx.AsyncClient,
                                                  ctx: Context) -> None:
    body = await _register(client, WEB)
    uri, token = body["registration_client_uri"].removeprefix(ISSUER), bearer(
        body["registration_access_token"])
    new_uri = "https://app.example/callback2"
    update = {**WEB, "client_id": body["client_id"], "client_name": "Partner shop EU",
              "redirect_uris": [new_uri], "scope": "openid email",
              "client_secret": body["client_secret"]}
    replaced = await client.put(uri, json=update, headers=token)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["client_name"] == "Partner shop EU"
    assert replaced.json()["redirect_uris"] == [new_uri]
    assert replaced.json()["scope"] == "openid email"
    assert (await client.get(uri, headers=token)).json()["redirect_uris"] == [new_uri]
    # The old redirect URI is refused at once; the new one works.
    app = App(body["client_id"], body["client_secret"], WEB["redirect_uris"][0])
    old = await client.get("/authorize", params=Flow(app).params(scope="openid"))
    assert old.status_code == 400
    await make_user(ctx)
    flow = Flow(App(app.client_id, app.client_secret, new_uri))
    tokens = await redeem(client, flow, await get_code(client, flow, scope="openid email"))
    assert tokens.status_code == 200, tokens.text
    events = (await client.get("/admin/v1/audit-events", params={"target_id": app.client_id},
                               headers=await _ops(client, ctx))).json()
    assert events[0]["action"] == "client.update"
    assert events[0]["actor"] == f"client:{app.client_id}"
    assert events[0]["before"]["name"] == "Partner shop"
    assert events[0]["after"]["name"] == "Partner shop EU"


@pytest.mark.parametrize(("change", "error"), [
    ({"client_id": None}, "invalid_client_metadata"),
    ({"client_id": "someone-else"}, "invalid_client_metadata"),
    ({"registration_access_token": "x"}, "invalid_client_metadata"),
    ({"client_id_issued_at": 1}, "invalid_client_metadata"),
    ({"client_secret": "not-the-secret"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "client_secret_post"}, "invalid_client_metadata"),
    ({"application_type": "native"}, "invalid_client_metadata"),
    ({"scope": "openid admin:read"}, "invalid_client_metadata"),
    ({"grant_types": ["authorization_code", "client_credentials"]}, "invalid_client_metadata"),
    ({"redirect_uris": ["https://app.example/cb#f"]}, "invalid_redirect_uri"),
])
async def test_a_replacement_that_breaks_a_rule_changes_nothing(
        client: httpx.AsyncClient, ctx: Context, change: dict[str, Any], error: str) -> None:
    body = await _register(client, WEB)
    uri, token = body["registration_client_uri"].removeprefix(ISSUER), bearer(
        body["registration_access_token"])
    update = {k: v for k, v in {**WEB, "client_id": body["client_id"], **change}.items()
              if v is not None}
    assert_refused(await client.put(uri, json=update, headers=token), error)
    assert (await client.get(uri, headers=token)).json() == {
        k: v for k, v in body.items() if k not in ("client_secret", "client_secret_expires_at")}


async def test_a_client_deletes_its_registration(client: httpx.AsyncClient,
                                                 ctx: Context) -> None:
    body = await _register(client, WEB)
    uri, token = body["registration_client_uri"].removeprefix(ISSUER), bearer(
        body["registration_access_token"])
    app = App(body["client_id"], body["client_secret"], WEB["redirect_uris"][0])
    await make_user(ctx)
    flow = Flow(app)
    code = await get_code(client, flow, scope="openid email offline_access")
    issued = (await redeem(client, flow, code)).json()
    assert_bearer_error(await client.delete(uri, headers=bearer("wrong")), 401,
                        "invalid_token")
    deleted = await client.delete(uri, headers=token)
    assert deleted.status_code == 204
    assert_bearer_error(await client.get(uri, headers=token), 401, "invalid_token")
    assert_bearer_error(await client.delete(uri, headers=token), 401, "invalid_token")
    refused = await client.post("/token", headers=app.basic(), data={
        "grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert_bearer_error(await client.get("/userinfo", headers=bearer(issued["access_token"])),
                        401, "invalid_token")
