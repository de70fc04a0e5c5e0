"""Revocation (RFC 7009) and introspection (RFC 7662), answered from live state."""

from __future__ import annotations

import httpx
import pytest

from idp.services.context import Context
from tests.conftest import ISSUER, FakeClock
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem

GRANTS = ["authorization_code", "refresh_token"]
SCOPES = ["openid", "profile", "email", "offline_access"]


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx, grant_types=GRANTS, scopes=SCOPES)


@pytest.fixture
async def api(ctx: Context) -> App:
    """A resource server: a confidential client that introspects."""
    return await make_app(ctx, name="Orders API", grant_types=["client_credentials"],
                          scopes=["orders:read"])


async def issue(client: httpx.AsyncClient, shop: App) -> dict[str, str]:
    flow = Flow(shop)
    code = await get_code(client, flow, scope="openid profile offline_access")
    return (await redeem(client, flow, code)).json()


async def introspect(client: httpx.AsyncClient, caller: App, token: str, **extra: str
                     ) -> httpx.Response:
    return await client.post("/introspect", data={"token": token, **extra},
                             headers=caller.basic())


async def revoke(client: httpx.AsyncClient, caller: App, token: str, **extra: str
                 ) -> httpx.Response:
    return await client.post("/revoke", data={"token": token, **extra}, headers=caller.basic())


async def test_active_access_token(client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    response = await introspect(client, api, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "openid profile offline_access"
    assert body["client_id"] == shop.client_id
    assert body["token_type"] == "Bearer"
    assert body["iss"] == ISSUER and body["aud"] == ISSUER
    assert body["exp"] > body["iat"]
    assert body["consent"]["scopes"] == ["openid", "profile", "offline_access"]
    assert isinstance(body["consent"]["grant_id"], str)
    assert body["sub"] and "@" not in body["sub"]


async def test_refresh_token_introspection_only_by_its_client(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    own = await introspect(client, shop, tokens["refresh_token"],
                           token_type_hint="refresh_token")
    assert own.json()["active"] is True
    assert own.json()["token_type"] == "refresh_token"
    assert (await introspect(client, api, tokens["refresh_token"])).json() == {"active": False}


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 20_000])
async def test_unknown_or_malformed_tokens_are_inactive(client: httpx.AsyncClient, api: App,
                                                        token: str) -> None:
    response = await introspect(client, api, token)
    if token == "":
        assert response.json()["error"] == "invalid_request"
    else:
        assert response.json() == {"active": False}


async def test_expired_access_token_is_inactive(client: httpx.AsyncClient, shop: App, api: App,
                                                clock: FakeClock, ctx: Context) -> None:
    tokens = await issue(client, shop)
    clock.advance(ctx.settings.access_token_ttl + 1)
    assert (await introspect(client, api, tokens["access_token"])).json() == {"active": False}


async def test_public_clients_and_bad_credentials_cannot_introspect(
        client: httpx.AsyncClient, ctx: Context, shop: App) -> None:
    tokens = await issue(client, shop)
    spa = await make_app(ctx, name="SPA", client_type="public")
    response = await client.post("/introspect", data={"token": tokens["access_token"],
                                                      "client_id": spa.client_id})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    response = await client.post("/introspect", data={"token": tokens["access_token"]},
                                 auth=(shop.client_id, "wrong"))
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


async def test_revoking_an_access_token_takes_effect_at_once(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    response = await revoke(client, shop, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert (await introspect(client, api, tokens["access_token"])).json() == {"active": False}
    userinfo = await client.get("/userinfo",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    # The refresh token was not touched.
    assert (await introspect(client, shop, tokens["refresh_token"])).json()["active"] is True


async def test_revoking_a_refresh_token_revokes_the_grants_access_tokens(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    # A wrong hint must not prevent revocation (RFC 7009 §2.1).
    response = await revoke(client, shop, tokens["refresh_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert (await introspect(client, shop, tokens["refresh_token"])).json() == {"active": False}
    assert (await introspect(client, api, tokens["access_token"])).json() == {"active": False}
    refreshed = await client.post("/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]},
                                  headers=shop.basic())
    assert refreshed.json()["error"] == "invalid_grant"


async def test_unknown_token_revocation_answers_200(client: httpx.AsyncClient, shop: App) -> None:
    assert (await revoke(client, shop, "never-issued")).status_code == 200


async def test_a_client_cannot_revoke_another_clients_token(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    response = await revoke(client, api, tokens["access_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert (await introspect(client, api, tokens["access_token"])).json()["active"] is True


async def test_public_client_revokes_its_own_token(client: httpx.AsyncClient,
                                                   ctx: Context, api: App) -> None:
    await make_user(ctx, email="bob@example.com")
    app = await make_app(ctx, name="Mobile", client_type="public", grant_types=GRANTS,
                         scopes=SCOPES)
    flow = Flow(app)
    code = await get_code(client, flow, email="bob@example.com",
                          scope="openid offline_access")
    tokens = (await redeem(client, flow, code)).json()
    response = await client.post("/revoke", data={"token": tokens["refresh_token"],
                                                  "client_id": app.client_id})
    assert response.status_code == 200
    assert (await introspect(client, api, tokens["access_token"])).json() == {"active": False}


async def test_revocation_requires_client_authentication(client: httpx.AsyncClient,
                                                         shop: App) -> None:
    tokens = await issue(client, shop)
    response = await client.post("/revoke", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
