"""refresh_token grant: rotation, reuse detection, narrowing, lifetimes (RFC 6749 §6,
RFC 9700 §4.14.2, OIDC Core §11, §12)."""

from __future__ import annotations

import asyncio

import httpx
import jwt as pyjwt
import pytest

from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem

GRANTS = ["authorization_code", "refresh_token"]


async def refresh(http: httpx.AsyncClient, app: App, token: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    headers = app.basic() if app.client_secret else {}
    if not app.client_secret:
        data["client_id"] = app.client_id
    return await http.post("/token", data=data, headers=headers)


async def tokens_for(client: httpx.AsyncClient, ctx: Context, shop: App,
                     scope: str = "openid profile offline_access") -> dict[str, str]:
    flow = Flow(shop)
    code = await get_code(client, flow, scope=scope)
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx, grant_types=GRANTS,
                          scopes=["openid", "profile", "email", "offline_access"])


async def test_offline_access_yields_a_refresh_token_that_rotates(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    assert "refresh_token" in first
    response = await refresh(client, shop, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "openid profile offline_access"
    # OIDC Core §12.2: same sub, original auth_time, no nonce.
    old = pyjwt.decode(first["id_token"], options={"verify_signature": False})
    new = pyjwt.decode(second["id_token"], options={"verify_signature": False})
    assert new["sub"] == old["sub"] and new["auth_time"] == old["auth_time"]
    assert "nonce" in old and "nonce" not in new
    # The new refresh token works in turn.
    assert (await refresh(client, shop, second["refresh_token"])).status_code == 200


async def test_no_refresh_token_without_offline_access_or_long_sessions(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    body = await tokens_for(client, ctx, shop, scope="openid profile")
    assert "refresh_token" not in body


async def test_long_session_clients_get_refresh_tokens_without_offline_access(
        client: httpx.AsyncClient, ctx: Context) -> None:
    await make_user(ctx, email="bob@example.com")
    app = await make_app(ctx, grant_types=GRANTS, long_sessions=True)
    flow = Flow(app)
    code = await get_code(client, flow, email="bob@example.com")
    assert "refresh_token" in (await redeem(client, flow, code)).json()


async def test_reuse_of_a_rotated_token_revokes_the_whole_grant(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    second = (await refresh(client, shop, first["refresh_token"])).json()
    reused = await refresh(client, shop, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The legitimate successor is dead too, and so are the access tokens of the grant.
    successor = await refresh(client, shop, second["refresh_token"])
    assert successor.json()["error"] == "invalid_grant"
    for access in (first["access_token"], second["access_token"]):
        info = await client.get("/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert info.status_code == 401


async def test_scope_may_narrow_but_not_widen(client: httpx.AsyncClient, ctx: Context,
                                              shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    narrowed = await refresh(client, shop, first["refresh_token"], scope="openid")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "openid"
    claims = pyjwt.decode(narrowed.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "openid"
    # The rotated refresh token keeps the original scope (RFC 6749 §6).
    again = await refresh(client, shop, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "openid profile offline_access"
    widened = await refresh(client, shop, again.json()["refresh_token"], scope="openid email")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


async def test_bound_to_the_client(client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    other = await make_app(ctx, name="Other", grant_types=GRANTS)
    stolen = await refresh(client, other, first["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    # The theft attempt did not burn the owner's token.
    assert (await refresh(client, shop, first["refresh_token"])).status_code == 200


async def test_idle_and_absolute_lifetimes(client: httpx.AsyncClient, ctx: Context, shop: App,
                                           clock: FakeClock) -> None:
    idle = ctx.settings.refresh_token_idle_ttl
    first = await tokens_for(client, ctx, shop)
    clock.advance(idle - 10)
    second = await refresh(client, shop, first["refresh_token"])
    assert second.status_code == 200
    clock.advance(idle + 1)
    expired = await refresh(client, shop, second.json()["refresh_token"])
    assert expired.json()["error"] == "invalid_grant"

    # Absolute: keep refreshing inside the idle window until the chain's end.
    fresh = await tokens_for(client, ctx, shop)
    token = fresh["refresh_token"]
    elapsed = 0
    while elapsed + idle - 60 < ctx.settings.refresh_token_absolute_ttl:
        clock.advance(idle - 60)
        elapsed += idle - 60
        response = await refresh(client, shop, token)
        assert response.status_code == 200
        token = response.json()["refresh_token"]
    clock.advance(idle - 60)
    assert (await refresh(client, shop, token)).json()["error"] == "invalid_grant"


async def test_malformed_requests(client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    missing = await refresh(client, shop, "")
    assert missing.json()["error"] == "invalid_request"
    unknown = await refresh(client, shop, "not-a-real-token")
    assert unknown.json()["error"] == "invalid_grant"
    no_grant = await make_app(ctx, name="No refresh")
    refused = await refresh(client, no_grant, "whatever")
    assert refused.json()["error"] == "unauthorized_client"


async def test_twenty_parallel_refreshes_have_exactly_one_winner(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    first = await tokens_for(client, ctx, shop)
    responses = await asyncio.gather(
        *(refresh(client, shop, first["refresh_token"]) for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}


async def test_refresh_storms_on_one_grant_never_deadlock(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    """REL-02 under load: round after round of twenty parallel refreshes of one token on the
    same grant. Without the grant's row lock taken first, losers' reuse revocations
    deadlocked on PostgreSQL within a few rounds (a loser keeps the row lock of the token it
    re-checked while another holds other rows of the grant)."""
    # SQLite serialises writers outright; the rounds matter on PostgreSQL.
    for _ in range(30 if ctx.db.dialect == "postgresql" else 2):
        first = await tokens_for(client, ctx, shop)
        responses = await asyncio.gather(
            *(refresh(client, shop, first["refresh_token"]) for _ in range(20)),
            return_exceptions=True)
        statuses = sorted(getattr(r, "status_code", 500) for r in responses)
        assert statuses == [200] + [400] * 19, [r for r in responses
                                                if not isinstance(r, httpx.Response)][:1]


async def introspect(http: httpx.AsyncClient, app: App, token: str) -> dict[str, object]:
    response = await http.post("/introspect", data={"token": token}, headers=app.basic())
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_after_twenty_parallel_refreshes_exactly_these_tokens_are_alive(
        client: httpx.AsyncClient, new_browser, ctx: Context, shop: App) -> None:  # type: ignore[no-untyped-def]
    """RFC 9700 §4.14.2 and the README ("a rotated token presented again revokes every token
    of its grant"): of twenty parallel refreshes of one token, one wins; the first loser finds
    the token rotated, which proves it was presented twice, and revokes the grant's tokens;
    the other eighteen find it revoked. What is alive afterwards, as the apps see it: nothing
    of the grant (the winner's new tokens, the original pair, and the pair another device got
    from another code of the same grant), and everything of the customer's other grant."""
    magazine = await make_app(ctx, name="Magazine", redirect_uri="https://app.example/mag",
                              grant_types=GRANTS, scopes=["openid", "profile", "offline_access"])
    first = await tokens_for(client, ctx, shop)
    phone = await tokens_for(new_browser(), ctx, shop)
    elsewhere = await tokens_for(client, ctx, magazine)
    grant_of = {name: pyjwt.decode(tokens["access_token"], options={"verify_signature": False}
                                   )["consent"]["grant_id"]
                for name, tokens in (("first", first), ("phone", phone),
                                     ("elsewhere", elsewhere))}
    assert grant_of["first"] == grant_of["phone"] != grant_of["elsewhere"]

    responses = await asyncio.gather(
        *(refresh(client, shop, first["refresh_token"]) for _ in range(20)))
    winners = [r.json() for r in responses if r.status_code == 200]
    losers = [r for r in responses if r.status_code != 200]
    assert len(winners) == 1 and len(losers) == 19
    assert {(r.status_code, r.json()["error"]) for r in losers} == {(400, "invalid_grant")}
    assert sorted(r.json()["error_description"] for r in losers) == (
        ["The refresh token is invalid, expired or revoked"] * 18
        + ["The refresh token was already used"])
    won = winners[0]
    assert won["refresh_token"] != first["refresh_token"]

    dead = {"winner": won, "original": first, "phone": phone}
    for name, tokens in dead.items():
        for kind in ("access_token", "refresh_token"):
            assert await introspect(client, shop, tokens[kind]) == {"active": False}, (
                name, kind)
        info = await client.get("/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})
        assert info.status_code == 401, name
        refused = await refresh(client, shop, tokens["refresh_token"])
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), name
    # The customer's grant with the other app is untouched.
    assert (await introspect(client, magazine, elsewhere["access_token"]))["active"] is True
    assert (await introspect(client, magazine, elsewhere["refresh_token"]))["active"] is True
    info = await client.get("/userinfo", headers={
        "Authorization": f"Bearer {elsewhere['access_token']}"})
    assert info.status_code == 200
    assert (await refresh(client, magazine, elsewhere["refresh_token"])).status_code == 200
