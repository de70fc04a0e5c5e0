"""What the tokens say, verified with an independent JOSE library (PyJWT) against /jwks:
the ID token (OIDC Core §2, §3.1.3.6, §3.1.3.7) and the JWT access token (RFC 9068)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from idp.services.accounts import admin
from idp.services.context import Context
from tests.conftest import ISSUER, FakeClock
from tests.helpers import Flow, get_code, make_app, make_user, query_of, redeem

USER_CLAIMS = {"name", "given_name", "family_name", "email", "email_verified", "phone_number",
               "address", "updated_at", "birthdate", "picture", "locale"}


async def signing_key(http: httpx.AsyncClient, token: str) -> tuple[dict[str, Any], Any]:
    """The token's header and the JWKS key its `kid` names."""
    header = pyjwt.get_unverified_header(token)
    response = await http.get("/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids)), "kids must be unique"
    assert "kid" in header, "OIDC Core §10.1: kid in the header"
    matching = [k for k in keys if k["kid"] == header["kid"]]
    assert len(matching) == 1, f"kid {header['kid']} is not in the JWKS"
    return header, matching[0]


async def verify(http: httpx.AsyncClient, token: str, *, alg: str, typ: str, audience: str,
                 leeway: int = 0) -> dict[str, Any]:
    header, jwk = await signing_key(http, token)
    assert header["alg"] == alg
    assert header["typ"] == typ
    assert jwk.get("alg") in (None, alg)
    claims: dict[str, Any] = pyjwt.decode(
        token, pyjwt.PyJWK(jwk).key, algorithms=[alg], audience=audience, issuer=ISSUER,
        leeway=leeway, options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )
    return claims


def expected_at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: base64url of the left half of SHA-256 (for RS256 and ES256)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def tokens(http: httpx.AsyncClient, flow: Flow, **extra: str | None) -> dict[str, Any]:
    code = await get_code(http, flow, **extra)  # type: ignore[arg-type]
    response = await redeem(http, flow, code)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def acr_values_supported(http: httpx.AsyncClient) -> list[str]:
    meta = (await http.get("/.well-known/openid-configuration")).json()
    values: list[str] = meta["acr_values_supported"]
    return values


# --- ID token --------------------------------------------------------------------------------


async def test_id_token_claims(client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    app = await make_app(ctx)
    sub = await make_user(ctx, name="Alice Example", phone_number="+1 555 0100")
    login_time = int(clock.value)
    flow = Flow(app)
    body = await tokens(client, flow)
    claims = await verify(client, body["id_token"], alg="RS256", typ="JWT",
                          audience=app.client_id)
    _, jwk = await signing_key(client, body["id_token"])
    assert jwk["kty"] == "RSA"

    assert claims["iss"] == ISSUER
    assert claims["sub"] == sub
    assert claims["aud"] in (app.client_id, [app.client_id])
    # OIDC-12: azp, when present, is the client the token was issued to.
    assert claims["azp"] == app.client_id
    assert claims["iat"] == login_time
    assert claims["exp"] == login_time + 300
    assert claims["auth_time"] == login_time
    assert claims["nonce"] == flow.nonce
    assert claims["at_hash"] == expected_at_hash(body["access_token"])
    assert isinstance(claims["sid"], str) and claims["sid"]
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] in await acr_values_supported(client)
    # OIDC Core §5.4: with the code flow, scope-released claims come from UserInfo.
    assert not set(claims) & USER_CLAIMS


async def test_nonce_is_absent_when_not_sent(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    await make_user(ctx)
    body = await tokens(client, Flow(app), nonce=None)
    claims = await verify(client, body["id_token"], alg="RS256", typ="JWT",
                          audience=app.client_id)
    assert "nonce" not in claims


async def test_nonce_is_echoed_exactly(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    await make_user(ctx)
    flow = Flow(app, nonce="n-0S6_WzA2Mj ü+/=~")
    body = await tokens(client, flow)
    claims = await verify(client, body["id_token"], alg="RS256", typ="JWT",
                          audience=app.client_id)
    assert claims["nonce"] == "n-0S6_WzA2Mj ü+/=~"


async def test_nonce_with_nul_is_refused_before_anything_is_stored(client: httpx.AsyncClient,
                                                                    ctx: Context) -> None:
    # PostgreSQL text cannot hold NUL: the request is refused (redirected, since client and
    # redirect_uri are valid) instead of failing when the code is stored.
    app = await make_app(ctx)
    await make_user(ctx)
    flow = Flow(app, nonce="n\x00x")
    response = await client.get("/authorize", params=flow.params())
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request"
    assert query["state"] == flow.state


async def test_auth_time_is_the_login_time_on_a_later_sso_authorization(
    client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    """OIDC-05: auth_time is when the end-user authenticated, not when the token was issued."""
    app = await make_app(ctx)
    await make_user(ctx)
    login_time = int(clock.value)
    first = await verify(client, (await tokens(client, Flow(app)))["id_token"], alg="RS256",
                         typ="JWT", audience=app.client_id)
    clock.advance(100)
    # The browser still has its session: no login page, no consent page.
    second_body = await tokens(client, Flow(app))
    second = await verify(client, second_body["id_token"], alg="RS256", typ="JWT",
                          audience=app.client_id, leeway=200)
    assert first["auth_time"] == second["auth_time"] == login_time
    assert second["iat"] == login_time + 100
    assert second["sid"] == first["sid"]
    access = await verify(client, second_body["access_token"], alg="ES256", typ="at+jwt",
                          audience=ISSUER, leeway=200)
    assert access["auth_time"] == login_time


async def test_sid_names_the_browser_session_and_is_not_the_cookie(
    ctx: Context, new_browser: Any
) -> None:
    app = await make_app(ctx)
    await make_user(ctx)
    sids = []
    for _ in range(2):
        browser: httpx.AsyncClient = new_browser()
        body = await tokens(browser, Flow(app))
        claims = await verify(browser, body["id_token"], alg="RS256", typ="JWT",
                              audience=app.client_id)
        cookies = list(browser.cookies.values())
        assert cookies
        assert claims["sid"] not in cookies
        sids.append(claims["sid"])
    assert sids[0] != sids[1]


async def test_es256_client_gets_es256_id_tokens(client: httpx.AsyncClient,
                                                 ctx: Context) -> None:
    app = await make_app(ctx, id_token_signed_response_alg="ES256")
    await make_user(ctx)
    flow = Flow(app)
    body = await tokens(client, flow)
    claims = await verify(client, body["id_token"], alg="ES256", typ="JWT",
                          audience=app.client_id)
    _, jwk = await signing_key(client, body["id_token"])
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    assert claims["nonce"] == flow.nonce
    # ES256 hashes with SHA-256 too, so at_hash is computed the same way.
    assert claims["at_hash"] == expected_at_hash(body["access_token"])
    # The ID token algorithm is the client's choice; access tokens follow the setting (ES256).
    await verify(client, body["access_token"], alg="ES256", typ="at+jwt", audience=ISSUER)


async def test_rs256_and_es256_keys_are_distinct(client: httpx.AsyncClient, ctx: Context) -> None:
    rs_app = await make_app(ctx)
    es_app = await make_app(ctx, name="EC", id_token_signed_response_alg="ES256")
    await make_user(ctx)
    rs_header, _ = await signing_key(client, (await tokens(client, Flow(rs_app)))["id_token"])
    es_header, _ = await signing_key(client, (await tokens(client, Flow(es_app)))["id_token"])
    assert rs_header["kid"] != es_header["kid"]


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS512", ""])
async def test_id_token_alg_none_or_unsupported_cannot_be_registered(ctx: Context,
                                                                     alg: str) -> None:
    # security.md §2.2: alg=none ID tokens are never produced.
    with pytest.raises(admin.InvalidInput):
        await make_app(ctx, id_token_signed_response_alg=alg)


async def test_signing_algorithms_never_include_none(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert "none" not in meta["id_token_signing_alg_values_supported"]
    keys = (await client.get("/jwks")).json()["keys"]
    assert keys
    assert all(k["kty"] in ("RSA", "EC") and "d" not in k for k in keys)


# --- access token (RFC 9068) -----------------------------------------------------------------


async def test_access_token_is_an_rfc9068_jwt(client: httpx.AsyncClient, ctx: Context,
                                              clock: FakeClock) -> None:
    app = await make_app(ctx)
    sub = await make_user(ctx)
    login_time = int(clock.value)
    body = await tokens(client, Flow(app))
    claims = await verify(client, body["access_token"], alg="ES256", typ="at+jwt",
                          audience=ISSUER)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == sub
    # Not an ID token for the client: another audience (RFC 8725 §3.11, §2.8).
    assert claims["aud"] != app.client_id
    assert claims["client_id"] == app.client_id
    assert claims["scope"] == "openid profile email"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["iat"] == login_time
    assert claims["exp"] == login_time + body["expires_in"]
    assert claims["auth_time"] == login_time
    consent = claims["consent"]
    assert isinstance(consent["grant_id"], str) and consent["grant_id"]
    assert consent["scopes"] == ["openid", "profile", "email"]
    assert consent["granted_at"] == login_time


async def test_consent_claim_names_the_same_grant_across_authorizations(
    client: httpx.AsyncClient, ctx: Context, clock: FakeClock
) -> None:
    app = await make_app(ctx)
    await make_user(ctx)
    consent_time = int(clock.value)
    first = await verify(client, (await tokens(client, Flow(app)))["access_token"],
                         alg="ES256", typ="at+jwt", audience=ISSUER)
    clock.advance(30)
    second = await verify(client, (await tokens(client, Flow(app)))["access_token"],
                          alg="ES256", typ="at+jwt", audience=ISSUER, leeway=60)
    assert second["consent"]["grant_id"] == first["consent"]["grant_id"]
    assert second["consent"]["granted_at"] == consent_time
    assert second["jti"] != first["jti"]


async def test_consent_claim_of_another_user_names_another_grant(ctx: Context,
                                                                new_browser: Any) -> None:
    app = await make_app(ctx)
    await make_user(ctx, "alice@example.com")
    await make_user(ctx, "bob@example.com")
    grants = []
    for email in ("alice@example.com", "bob@example.com"):
        browser: httpx.AsyncClient = new_browser()
        flow = Flow(app)
        code = await get_code(browser, flow, email=email)
        body = (await redeem(browser, flow, code)).json()
        claims = await verify(browser, body["access_token"], alg="ES256", typ="at+jwt",
                              audience=ISSUER)
        grants.append(claims["consent"]["grant_id"])
    assert grants[0] != grants[1]


async def test_sub_is_opaque_and_the_same_everywhere(client: httpx.AsyncClient,
                                                     ctx: Context) -> None:
    app = await make_app(ctx)
    sub = await make_user(ctx, "alice.wonder@example.com")
    body = await tokens(client, Flow(app), email="alice.wonder@example.com")
    access = await verify(client, body["access_token"], alg="ES256", typ="at+jwt",
                          audience=ISSUER)
    id_claims = await verify(client, body["id_token"], alg="RS256", typ="JWT",
                             audience=app.client_id)
    info = (await client.get("/userinfo",
                             headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    # OIDC Core §5.3.2: the UserInfo sub MUST equal the ID token's.
    assert access["sub"] == id_claims["sub"] == info["sub"] == sub
    assert info["email"] == "alice.wonder@example.com"
    # OIDC-13: never the e-mail or a part of it.
    assert "@" not in sub and "alice" not in sub.lower() and "example" not in sub.lower()
    assert len(sub) <= 255 and sub.isascii()


async def test_scope_without_openid_gets_no_id_token(client: httpx.AsyncClient,
                                                     ctx: Context) -> None:
    app = await make_app(ctx)
    await make_user(ctx)
    flow = Flow(app)
    code = await get_code(client, flow, scope="profile email", nonce=None)
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "id_token" not in body
    assert body["scope"] == "profile email"
    claims = await verify(client, body["access_token"], alg="ES256", typ="at+jwt",
                          audience=ISSUER)
    assert claims["scope"] == "profile email"
    assert claims["consent"]["scopes"] == ["profile", "email"]
