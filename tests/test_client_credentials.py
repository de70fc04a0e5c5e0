"""client_credentials grant (RFC 6749 §4.4) with RFC 9068 access tokens."""

from __future__ import annotations

import httpx
import jwt as pyjwt

from idp.services.accounts import admin
from idp.services.context import Context
from tests.conftest import ISSUER
from tests.helpers import make_app


async def test_confidential_client_gets_an_access_token_only(client: httpx.AsyncClient,
                                                             ctx: Context) -> None:
    app = await make_app(ctx, name="Backend", grant_types=["client_credentials"],
                         scopes=["orders:read", "orders:write"])
    response = await client.post("/token", data={"grant_type": "client_credentials",
                                                 "scope": "orders:read"}, headers=app.basic())
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["scope"] == "orders:read"
    jwks = (await client.get("/jwks")).json()
    header = pyjwt.get_unverified_header(body["access_token"])
    # RFC 9068 §2.1: explicitly typed; ES256 unless IDP_ACCESS_TOKEN_SIGNING_ALG says RS256.
    assert (header["typ"], header["alg"]) == ("at+jwt", "ES256")
    key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = pyjwt.decode(body["access_token"], key.key, algorithms=["ES256"], audience=ISSUER)
    assert claims["sub"] == app.client_id
    assert claims["client_id"] == app.client_id
    assert "consent" not in claims


async def test_default_scope_is_every_api_scope_of_the_client(client: httpx.AsyncClient,
                                                              ctx: Context) -> None:
    app = await make_app(ctx, grant_types=["client_credentials"],
                         scopes=["openid", "orders:read"])
    response = await client.post("/token", data={"grant_type": "client_credentials"},
                                 headers=app.basic())
    assert response.json()["scope"] == "orders:read"


async def test_scope_outside_the_client_or_about_users_is_refused(client: httpx.AsyncClient,
                                                                  ctx: Context) -> None:
    app = await make_app(ctx, grant_types=["client_credentials"],
                         scopes=["openid", "orders:read"])
    for scope in ("orders:write", "openid", "orders:read email"):
        response = await client.post("/token", data={"grant_type": "client_credentials",
                                                     "scope": scope}, headers=app.basic())
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"


async def test_client_without_the_grant_type_is_refused(client: httpx.AsyncClient,
                                                        ctx: Context) -> None:
    app = await make_app(ctx)
    response = await client.post("/token", data={"grant_type": "client_credentials"},
                                 headers=app.basic())
    assert response.json()["error"] == "unauthorized_client"


async def test_public_clients_cannot_register_or_use_it(ctx: Context) -> None:
    try:
        await admin.create_client(ctx, name="SPA", redirect_uris=["https://spa.example/cb"],
                                  client_type="public", grant_types=["client_credentials"])
    except admin.InvalidInput as exc:
        assert "confidential" in str(exc)
    else:
        raise AssertionError("a public client was registered for client_credentials")


async def test_wrong_secret_is_401(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx, grant_types=["client_credentials"], scopes=["orders:read"])
    response = await client.post("/token", data={"grant_type": "client_credentials"},
                                 auth=(app.client_id, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
