"""UserInfo (OIDC Core §5.3) with bearer tokens (RFC 6750 §2.1 header, §2.2 form body, §3
errors), observed as a client and a resource owner would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import Flow, get_code, make_app, make_user, redeem

ADDRESS = {"street_address": "1 Main Street", "locality": "Springfield", "postal_code": "12345",
           "country": "US"}
PROFILE: dict[str, Any] = {
    "name": "Alice Example", "given_name": "Alice", "family_name": "Example",
    "phone_number": "+1 555 0100", "phone_number_verified": True, "address": ADDRESS,
}
CHALLENGE = 'Bearer realm="idp"'


@pytest.fixture
async def alice(ctx: Context, clock: FakeClock) -> dict[str, Any]:
    created_at = int(clock.value)
    sub = await make_user(ctx, **PROFILE)
    return {"sub": sub, "updated_at": created_at}


async def access_token_for(http: httpx.AsyncClient, ctx: Context,
                           scope: str = "openid profile email", **extra: Any) -> dict[str, Any]:
    app = await make_app(ctx, **extra)
    flow = Flow(app)
    code = await get_code(http, flow, scope=scope)
    response = await redeem(http, flow, code)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_challenge(response: httpx.Response, status: int, error: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    challenge = response.headers["www-authenticate"]
    if error is None:
        # RFC 6750 §3.1: no error code when the request carried no authentication.
        assert challenge == CHALLENGE
    else:
        assert challenge.startswith(CHALLENGE + ", ")
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error


def released(response: httpx.Response, token_scope: str) -> dict[str, Any]:
    """The end-user claims of a UserInfo answer. A `consent` member, where the provider adds
    one, describes the token's own consent and must not reach beyond its scope."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    consent = body.pop("consent", None)
    if consent is not None:
        assert sorted(consent["scopes"]) == sorted(token_scope.split())
    return body


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = pyjwt.get_unverified_header(token)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    return header, claims


# --- how the token is presented (RFC 6750 §2) ----------------------------------------------


async def test_get_with_bearer_header(client: httpx.AsyncClient, ctx: Context,
                                      alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx)
    response = await client.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["sub"] == alice["sub"]


async def test_post_with_bearer_header(client: httpx.AsyncClient, ctx: Context,
                                       alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx)
    response = await client.post("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == alice["sub"]


async def test_post_with_form_body(client: httpx.AsyncClient, ctx: Context,
                                   alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx)
    response = await client.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["sub"] == alice["sub"]


async def test_scheme_name_is_case_insensitive(client: httpx.AsyncClient, ctx: Context,
                                               alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx)
    response = await client.get("/userinfo",
                                headers={"Authorization": f"bearer {tokens['access_token']}"})
    assert response.status_code == 200, response.text


async def test_header_and_body_at_once_is_invalid_request(client: httpx.AsyncClient,
                                                          ctx: Context, alice: dict[str, Any]
                                                          ) -> None:
    """RFC 6750 §2: clients MUST NOT use more than one method to transmit the token."""
    token = (await access_token_for(client, ctx))["access_token"]
    response = await client.post("/userinfo", headers=bearer(token),
                                 data={"access_token": token})
    assert_challenge(response, 400, "invalid_request")


async def test_bearer_header_without_token_is_invalid_request(client: httpx.AsyncClient) -> None:
    assert_challenge(await client.get("/userinfo", headers={"Authorization": "Bearer "}), 400,
                     "invalid_request")


@pytest.mark.parametrize("request_kind", ["get", "post_empty", "post_blank_token", "basic",
                                          "query"])
async def test_no_token_is_401_without_error_code(client: httpx.AsyncClient, ctx: Context,
                                                  alice: dict[str, Any],
                                                  request_kind: str) -> None:
    token = (await access_token_for(client, ctx))["access_token"]
    if request_kind == "get":
        response = await client.get("/userinfo")
    elif request_kind == "post_empty":
        response = await client.post("/userinfo", data={})
    elif request_kind == "post_blank_token":
        response = await client.post("/userinfo", data={"access_token": ""})
    elif request_kind == "basic":
        # An unsupported authentication method counts as none (RFC 6750 §3.1).
        response = await client.get("/userinfo", headers={"Authorization": "Basic dXNlcjpwdw=="})
    else:
        # Tokens in URLs leak into logs and referrers; the query method is not supported.
        response = await client.get("/userinfo", params={"access_token": token})
    assert_challenge(response, 401, None)


# --- which tokens are accepted (RFC 6750 §3.1 invalid_token) --------------------------------


async def test_garbage_tokens_are_invalid_token(client: httpx.AsyncClient) -> None:
    for token in ("not-a-jwt", "a.b.c", "e30.e30.", "x" * 20_000):
        assert_challenge(await client.get("/userinfo", headers=bearer(token)), 401,
                         "invalid_token")


async def test_tampered_token_is_invalid_token(client: httpx.AsyncClient, ctx: Context,
                                               alice: dict[str, Any]) -> None:
    await make_user(ctx, "mallory@example.com")
    token = (await access_token_for(client, ctx, scope="openid"))["access_token"]
    _, claims = segments(token)
    encoded_header, _, signature = token.split(".")
    claims["scope"] = "openid profile email phone address"
    forged = ".".join([encoded_header, b64(json.dumps(claims).encode()), signature])
    assert_challenge(await client.get("/userinfo", headers=bearer(forged)), 401,
                     "invalid_token")
    # The genuine token still works, so the refusal is about the tampering.
    assert (await client.get("/userinfo", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("variant", ["rsa_our_kid", "ec_our_kid", "rsa_embedded_jwk",
                                     "rsa_unknown_kid"])
async def test_token_signed_by_a_foreign_key_is_invalid_token(
    client: httpx.AsyncClient, ctx: Context, alice: dict[str, Any], variant: str
) -> None:
    token = (await access_token_for(client, ctx))["access_token"]
    header, claims = segments(token)
    foreign: Any
    headers: dict[str, Any] = {"typ": "at+jwt", "kid": header["kid"]}
    if variant.startswith("ec"):
        foreign, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
    else:
        foreign, alg = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    if variant == "rsa_embedded_jwk":
        # CVE-2026-27962 class: a key carried in the token must never be trusted.
        headers["jwk"] = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(foreign.public_key()))
    if variant == "rsa_unknown_kid":
        headers["kid"] = "attacker-key"
    forged = pyjwt.encode(claims, foreign, algorithm=alg, headers=headers)
    assert_challenge(await client.get("/userinfo", headers=bearer(forged)), 401,
                     "invalid_token")


async def test_alg_none_with_our_kid_is_invalid_token(client: httpx.AsyncClient, ctx: Context,
                                                      alice: dict[str, Any]) -> None:
    token = (await access_token_for(client, ctx))["access_token"]
    header, claims = segments(token)
    for alg in ("none", "None", "NONE"):
        unsigned = {"alg": alg, "typ": "at+jwt", "kid": header["kid"]}
        forged = f"{b64(json.dumps(unsigned).encode())}.{b64(json.dumps(claims).encode())}."
        assert_challenge(await client.get("/userinfo", headers=bearer(forged)), 401,
                         "invalid_token")


async def test_hs256_keyed_with_our_public_key_is_invalid_token(
    client: httpx.AsyncClient, ctx: Context, alice: dict[str, Any]
) -> None:
    """RFC 8725 §2.1 / CVE-2024-37568 class: algorithm confusion with the public key."""
    token = (await access_token_for(client, ctx))["access_token"]
    header, claims = segments(token)
    jwk = next(k for k in (await client.get("/jwks")).json()["keys"] if k["kid"] == header["kid"])
    public_key = pyjwt.PyJWK(jwk).key
    raw = [jwk[name] for name in ("n", "x", "y") if name in jwk]  # RSA modulus, EC point
    candidates = [
        public_key.public_bytes(serialization.Encoding.PEM,
                                serialization.PublicFormat.SubjectPublicKeyInfo),
        json.dumps(jwk).encode(),
        b"".join(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in raw),
    ]
    for secret in candidates:
        forged_header = {"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}
        signing_input = ".".join(b64(json.dumps(part).encode())
                                 for part in (forged_header, claims))
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64(mac)}"
        assert_challenge(await client.get("/userinfo", headers=bearer(forged)), 401,
                         "invalid_token")


async def test_id_token_is_not_an_access_token(client: httpx.AsyncClient, ctx: Context,
                                               alice: dict[str, Any]) -> None:
    """RFC 8725 §3.11 / RFC 9068 §4: only `at+jwt` tokens are access tokens."""
    tokens = await access_token_for(client, ctx)
    assert_challenge(await client.get("/userinfo", headers=bearer(tokens["id_token"])), 401,
                     "invalid_token")


async def test_expired_token_is_invalid_token(client: httpx.AsyncClient, ctx: Context,
                                              clock: FakeClock, alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx)
    assert tokens["expires_in"] == 600
    clock.advance(599)
    assert (await client.get("/userinfo", headers=bearer(tokens["access_token"]))
            ).status_code == 200
    # RFC 7519 §4.1.4: not accepted on or after exp.
    clock.advance(1)
    assert_challenge(await client.get("/userinfo", headers=bearer(tokens["access_token"])), 401,
                     "invalid_token")


# --- what is released (OIDC Core §5.3.2, §5.4) -----------------------------------------------

PROFILE_OUT = {"name": "Alice Example", "given_name": "Alice", "family_name": "Example"}
EMAIL_OUT = {"email": "alice@example.com", "email_verified": True}
PHONE_OUT = {"phone_number": "+1 555 0100", "phone_number_verified": True}


@pytest.mark.parametrize(("scope", "expected"), [
    ("openid", {}),
    ("openid profile", {**PROFILE_OUT, "updated_at": None}),
    ("openid email", EMAIL_OUT),
    ("openid phone", PHONE_OUT),
    ("openid address", {"address": ADDRESS}),
    ("openid profile email address phone",
     {**PROFILE_OUT, "updated_at": None, **EMAIL_OUT, **PHONE_OUT, "address": ADDRESS}),
])
async def test_only_claims_of_the_granted_scopes(client: httpx.AsyncClient, ctx: Context,
                                                 alice: dict[str, Any], scope: str,
                                                 expected: dict[str, Any]) -> None:
    token = (await access_token_for(client, ctx, scope=scope))["access_token"]
    response = await client.get("/userinfo", headers=bearer(token))
    want = {"sub": alice["sub"], **expected}
    if "updated_at" in want:
        want["updated_at"] = alice["updated_at"]
    assert released(response, scope) == want


async def test_a_later_wider_consent_does_not_widen_an_earlier_token(
    client: httpx.AsyncClient, ctx: Context, alice: dict[str, Any]
) -> None:
    app = await make_app(ctx)
    narrow_flow = Flow(app)
    code = await get_code(client, narrow_flow, scope="openid email")
    narrow = (await redeem(client, narrow_flow, code)).json()["access_token"]
    wide_flow = Flow(app)
    code = await get_code(client, wide_flow, scope="openid email phone address")
    wide = (await redeem(client, wide_flow, code)).json()["access_token"]
    narrow_info = await client.get("/userinfo", headers=bearer(narrow))
    assert released(narrow_info, "openid email") == {"sub": alice["sub"], **EMAIL_OUT}
    wide_info = await client.get("/userinfo", headers=bearer(wide))
    assert released(wide_info, "openid email phone address") == {
        "sub": alice["sub"], **EMAIL_OUT, **PHONE_OUT, "address": ADDRESS}


async def test_token_without_openid_is_insufficient_scope(client: httpx.AsyncClient,
                                                          ctx: Context,
                                                          alice: dict[str, Any]) -> None:
    tokens = await access_token_for(client, ctx, scope="profile email")
    assert "id_token" not in tokens
    response = await client.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert_challenge(response, 403, "insufficient_scope")
    assert set(response.json()) <= {"error", "error_description"}
    assert "alice@" not in response.text
