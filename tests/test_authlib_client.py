"""The code flow driven by an independent client library: authlib's httpx OAuth 2.0 client
builds the authorization request and redeems the code, and the ID token is verified with
joserfc and authlib's OIDC claim rules against the published JWKS. Nothing on the client side
uses idp code; only the end-user's clicks go through tests.helpers.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from idp.services.context import Context
from tests.conftest import ISSUER
from tests.helpers import approve, follow_to_page, login, make_app, make_user, query_of


@dataclass(frozen=True)
class Registration:
    client_type: str
    application_type: str
    redirect_uri: str
    auth_method: str
    id_token_alg: str


REGISTRATIONS = {
    "public-native": Registration("public", "native", "http://127.0.0.1/callback", "none",
                                  "RS256"),
    "basic-es256": Registration("confidential", "web", "https://app.example/callback",
                                "client_secret_basic", "ES256"),
    "post-rs256": Registration("confidential", "web", "https://app.example/callback",
                               "client_secret_post", "RS256"),
}


@pytest.fixture
async def metadata(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["issuer"] == ISSUER
    return body


@pytest.fixture
async def oauth_factory(app: Any) -> AsyncIterator[Any]:
    opened: list[AsyncOAuth2Client] = []

    def factory(client_id: str, client_secret: str | None, reg: Registration
                ) -> AsyncOAuth2Client:
        oauth = AsyncOAuth2Client(
            client_id=client_id, client_secret=client_secret,
            token_endpoint_auth_method=reg.auth_method, redirect_uri=reg.redirect_uri,
            scope="openid profile email", code_challenge_method="S256",
            transport=httpx.ASGITransport(app=app), base_url=ISSUER,
        )
        opened.append(oauth)
        return oauth

    yield factory
    for oauth in opened:
        await oauth.aclose()


async def end_user_signs_in(browser: httpx.AsyncClient, authorization_url: str) -> str:
    """The browser's part: follow the URL, sign in, allow; the redirect back to the app."""
    page = await follow_to_page(browser, await browser.get(authorization_url))
    page = await login(browser, page)
    response = await approve(browser, page)
    assert response.status_code == 303, response.text
    location: str = response.headers["location"]
    return location


async def verify_id_token(oauth: AsyncOAuth2Client, metadata: dict[str, Any],
                          token: dict[str, Any], nonce: str) -> CodeIDToken:
    jwks = (await oauth.request("GET", metadata["jwks_uri"], withhold_token=True)).json()
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), registry=JWSRegistry(
        algorithms=metadata["id_token_signing_alg_values_supported"]))
    claims = CodeIDToken(
        decoded.claims, decoded.header,
        {"iss": {"essential": True, "value": metadata["issuer"]},
         "aud": {"essential": True, "value": oauth.client_id}},
        {"nonce": nonce, "client_id": oauth.client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=5)  # exp, iat, iss, aud, nonce, azp and at_hash
    return claims


@pytest.mark.parametrize("name", list(REGISTRATIONS))
async def test_authlib_client_completes_the_code_flow(
    ctx: Context, client: httpx.AsyncClient, metadata: dict[str, Any], oauth_factory: Any,
    name: str,
) -> None:
    reg = REGISTRATIONS[name]
    app = await make_app(ctx, redirect_uri=reg.redirect_uri, client_type=reg.client_type,
                         application_type=reg.application_type,
                         token_endpoint_auth_method=reg.auth_method,
                         id_token_signed_response_alg=reg.id_token_alg)
    sub = await make_user(ctx, name="Alice Example")
    oauth = oauth_factory(app.client_id, app.client_secret, reg)
    verifier, nonce = generate_token(48), secrets.token_urlsafe(12)

    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    redirect = await end_user_signs_in(client, url)

    assert redirect.startswith(reg.redirect_uri + "?")
    assert query_of(redirect)["iss"] == metadata["issuer"]  # RFC 9207, checked by the app
    # authlib takes the code from the redirect and checks `state` against its own.
    token = await oauth.fetch_token(metadata["token_endpoint"], authorization_response=redirect,
                                    state=state, code_verifier=verifier)
    assert token["token_type"] == "Bearer"
    assert token["scope"].split() == ["openid", "profile", "email"]
    assert 0 < token["expires_in"] <= ctx.settings.access_token_ttl

    claims = await verify_id_token(oauth, metadata, token, nonce)
    assert claims.header["alg"] == reg.id_token_alg
    assert claims["sub"] == sub
    assert claims["azp"] == app.client_id

    # authlib attaches the bearer token itself.
    info = await oauth.get(metadata["userinfo_endpoint"])
    assert info.status_code == 200, info.text
    assert (info.json()["sub"], info.json()["name"]) == (sub, "Alice Example")


async def test_authlib_client_sees_the_rfc_errors(
    ctx: Context, client: httpx.AsyncClient, metadata: dict[str, Any], oauth_factory: Any,
) -> None:
    reg = REGISTRATIONS["basic-es256"]
    app = await make_app(ctx, redirect_uri=reg.redirect_uri, id_token_signed_response_alg="ES256")
    await make_user(ctx)
    oauth = oauth_factory(app.client_id, app.client_secret, reg)
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6_WzA2Mj")
    redirect = await end_user_signs_in(client, url)

    # RFC 7636 §4.6: the wrong verifier is invalid_grant.
    with pytest.raises(OAuthError) as wrong_verifier:
        await oauth.fetch_token(metadata["token_endpoint"], authorization_response=redirect,
                                state=state, code_verifier=generate_token(48))
    assert wrong_verifier.value.error == "invalid_grant"

    # RFC 6749 §2.3.1: a wrong secret is invalid_client.
    impostor = oauth_factory(app.client_id, "not-the-secret", reg)
    with pytest.raises(OAuthError) as wrong_secret:
        await impostor.fetch_token(metadata["token_endpoint"], authorization_response=redirect,
                                   state=state, code_verifier=verifier)
    assert wrong_secret.value.error == "invalid_client"
