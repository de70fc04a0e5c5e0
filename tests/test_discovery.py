"""OIDC Discovery 1.0 and RFC 8414 metadata: complete, and advertising only what works."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text

from idp.main import create_app
from idp.services.context import Context, build_context
from tests.conftest import ISSUER, make_settings


async def test_openid_configuration(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    # OIDC Discovery §3 required members, and the issuer byte-for-byte.
    assert meta["issuer"] == ISSUER
    assert meta["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert meta["token_endpoint"] == f"{ISSUER}/token"
    assert meta["userinfo_endpoint"] == f"{ISSUER}/userinfo"
    assert meta["jwks_uri"] == f"{ISSUER}/jwks"
    assert meta["response_types_supported"] == ["code"]
    assert meta["subject_types_supported"] == ["public", "pairwise"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    assert "openid" in meta["scopes_supported"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token",
                                             "client_credentials",
                                             "urn:ietf:params:oauth:grant-type:device_code"]
    assert meta["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert meta["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
    assert meta["response_modes_supported"] == ["query", "form_post"]
    assert meta["request_parameter_supported"] is False
    assert meta["request_uri_parameter_supported"] is False
    assert meta["claims_parameter_supported"] is True


async def test_claims_supported_names_the_consent_claim(client: httpx.AsyncClient) -> None:
    """Every token carries `consent` (README, "The consent claim"); discovery says so."""
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert "consent" in meta["claims_supported"]
    assert len(meta["claims_supported"]) == len(set(meta["claims_supported"]))


async def test_oauth_authorization_server_metadata(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    openid = (await client.get("/.well-known/openid-configuration")).json()
    # RFC 8414 §3.3: issuer identical to the one the metadata was fetched for.
    assert meta["issuer"] == ISSUER
    for name, value in meta.items():
        assert openid[name] == value


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
async def test_metadata_endpoints_are_cacheable_and_unframeable(client: httpx.AsyncClient,
                                                                path: str) -> None:
    response = await client.get(path)
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_advertised_endpoints_answer(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/openid-configuration")).json()
    for name in ("jwks_uri",):
        assert (await client.get(meta[name].removeprefix(ISSUER))).status_code == 200
    # The token and userinfo endpoints exist (they refuse an empty request in RFC terms).
    token = await client.post("/token", data={"grant_type": "authorization_code"})
    assert token.status_code == 401
    assert token.json()["error"] == "invalid_client"
    assert (await client.get("/userinfo")).status_code == 401


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).json() == {"status": "ok"}


async def test_readiness_does_not_queue_behind_a_writer(client: httpx.AsyncClient,
                                                        ctx: Context) -> None:
    """A probe answers while a unit of work holds the database's write lock (SQLite's one
    writer; several `idp serve` workers take turns at it): it reads, so it must not wait for
    the lock, which SQLite would let it do for its 30 s busy timeout."""
    async with ctx.db.transaction() as writer:  # BEGIN IMMEDIATE on SQLite: the write lock
        await writer.execute(text("DELETE FROM users"))
        probe = await asyncio.wait_for(client.get("/health/ready"), timeout=10)
        assert probe.status_code == 200
        assert probe.json() == {"status": "ok"}


async def test_readiness_fails_when_the_database_does_not_answer() -> None:
    """Nothing listens where the database should be: not ready (and for how long to stay
    away), while the process itself is alive."""
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:9/idp")
    context = build_context(settings)
    try:
        app = create_app(settings, ctx=context)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=ISSUER) as http:
            ready = await http.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable"}
            assert ready.headers["retry-after"] == "5"
            assert (await http.get("/health/live")).status_code == 200
    finally:
        await context.close()
