"""private_key_jwt client authentication (RFC 7523 §2.2/§3, OIDC Core §9) at the token
endpoint, the client key cache (REL-06), and the SSRF-safe fetcher (security.md §0 item 16).

Keys are generated and assertions signed here, on the client's side. The network is faked: a
`httpx.MockTransport` stands in for the client's server and `getaddrinfo` is patched, so no
test resolves or connects to anything.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.registry import HeaderParameter

from idp.cli import main
from idp.main import create_app
from idp.net.fetch import FetchError, fetch_json, new_http_client
from idp.services.accounts import admin
from idp.services.context import Context, build_context
from idp.services.tokens import client_assertion
from idp.store.models import UsedAssertion
from tests.conftest import ISSUER, TEST_SECRET, FakeClock, make_settings
from tests.helpers import fake_dns, make_app, throwaway_database

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_ENDPOINT = f"{ISSUER}/token"
JWKS_URI = "https://keys.app.example/jwks.json"
PUBLIC_IP = "93.184.215.14"

Key = RSAKey | ECKey


@functools.cache
def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)


@functools.cache
def ec_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid}, private=True)


def jwks(*keys: Key, **members: str) -> dict[str, Any]:
    return {"keys": [{**k.as_dict(private=False), **members} for k in keys]}


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(client_id: str, now: float, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": client_id, "sub": client_id, "aud": ISSUER, "jti": secrets.token_urlsafe(16),
        "iat": int(now), "exp": int(now) + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(key: Key, claims: dict[str, Any], alg: str | None = None, **header: Any) -> str:
    alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
    # The client side may send header parameters we do not know (RFC 7515 §4).
    registry = jws.JWSRegistry(header_registry={"x_custom": HeaderParameter("custom", "str")},
                               algorithms=[alg])
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, claims, key, registry=registry)


async def token(http: httpx.AsyncClient, assertion: str, **extra: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion, **extra}
    return await http.post("/token", data=data)


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


async def new_client(ctx: Context, *, keys: dict[str, Any] | None = None,
                     jwks_uri: str | None = None) -> str:
    app = await make_app(ctx, grant_types=["client_credentials"], scopes=["orders:read"],
                         token_endpoint_auth_method="private_key_jwt", jwks=keys,
                         jwks_uri=jwks_uri)
    assert app.client_secret is None  # no secret is generated for private_key_jwt
    return app.client_id


@pytest.fixture
async def rsa_client(ctx: Context) -> str:
    return await new_client(ctx, keys=jwks(rsa_key("rsa-1")))


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [ISSUER, TOKEN_ENDPOINT, [ISSUER], [ISSUER, TOKEN_ENDPOINT]])
async def test_rs256_assertion_authenticates(client: httpx.AsyncClient, rsa_client: str,
                                             clock: FakeClock, aud: Any) -> None:
    response = await token(client, sign(rsa_key("rsa-1"),
                                        claims_for(rsa_client, clock(), aud=aud)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "orders:read"
    published_keys = KeySet.import_key_set((await client.get("/jwks")).json())
    issued = jwt.decode(body["access_token"], published_keys, algorithms=["RS256", "ES256"])
    assert issued.claims["client_id"] == rsa_client


async def test_es256_assertion_authenticates(ctx: Context, client: httpx.AsyncClient,
                                             clock: FakeClock) -> None:
    client_id = await new_client(ctx, keys=jwks(ec_key("ec-1")))
    response = await token(client, sign(ec_key("ec-1"),
                                        claims_for(client_id, clock(), aud=TOKEN_ENDPOINT)),
                           client_id=client_id)
    assert response.status_code == 200, response.text


async def test_key_without_kid_is_found_when_it_is_the_only_one(
        ctx: Context, client: httpx.AsyncClient, clock: FakeClock) -> None:
    key = ECKey.generate_key("P-256", private=True)
    client_id = await new_client(ctx, keys={"keys": [key.as_dict(private=False)]})
    assertion = jwt.encode({"alg": "ES256"}, claims_for(client_id, clock()), key,
                           algorithms=["ES256"])
    assert (await token(client, assertion)).status_code == 200


async def test_ps256_only_with_a_key_that_allows_it(ctx: Context, client: httpx.AsyncClient,
                                                    clock: FakeClock) -> None:
    open_key = await new_client(ctx, keys=jwks(rsa_key("rsa-1")))
    pinned = await new_client(ctx, keys=jwks(rsa_key("rsa-1"), alg="RS256"))
    ok = await token(client, sign(rsa_key("rsa-1"), claims_for(open_key, clock()), "PS256"))
    assert ok.status_code == 200, ok.text
    # security.md §0 item 7: a key registered for RS256 verifies nothing else.
    refused = await token(client, sign(rsa_key("rsa-1"), claims_for(pinned, clock()), "PS256"))
    assert_invalid_client(refused)
    assert refused.json()["error_description"] == (
        "no registered key of the client matches the client_assertion")


async def test_assertion_within_the_clock_leeway_is_accepted(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    now = int(clock())
    # REL-07: 60 s of leeway on exp, nbf and iat.
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, now, iat=now - 100, exp=now - 50))
    assert (await token(client, assertion)).status_code == 200
    future = sign(rsa_key("rsa-1"), claims_for(rsa_client, now, iat=now + 50, nbf=now + 50,
                                               exp=now + 200))
    assert (await token(client, future)).status_code == 200


# --- claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [
    [ISSUER, "https://rp.attacker.example"],  # rfc7523bis: no foreign values in an array
    ["https://rp.attacker.example"],
    "https://other-idp.example",
    f"{ISSUER}/",
    f"{ISSUER}/introspect",
    [],
    None,
    42,
])
async def test_foreign_audience_is_refused(client: httpx.AsyncClient, rsa_client: str,
                                           clock: FakeClock, aud: Any) -> None:
    claims = claims_for(rsa_client, clock())
    claims.pop("aud")
    if aud is not None:
        claims["aud"] = aud
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"), claims)))


def _bad_claims(client_id: str, now: int) -> dict[str, dict[str, Any]]:
    return {
        "expired": claims_for(client_id, now, iat=now - 200, exp=now - 61),
        "too long-lived": claims_for(client_id, now, iat=now, exp=now + 301),
        "too long-lived without iat": claims_for(client_id, now, iat=None, exp=now + 301),
        "no exp": claims_for(client_id, now, exp=None),
        "exp not a number": claims_for(client_id, now, exp=str(now + 60)),
        "exp true": claims_for(client_id, now, exp=True),
        "not yet valid": claims_for(client_id, now, nbf=now + 61, exp=now + 200),
        "issued in the future": claims_for(client_id, now, iat=now + 61, exp=now + 200),
        "wrong iss": claims_for(client_id, now, iss="someone-else"),
        "no iss": claims_for(client_id, now, iss=None),
        "wrong sub": claims_for(client_id, now, sub="someone-else"),
        "no jti": claims_for(client_id, now, jti=None),
        "empty jti": claims_for(client_id, now, jti=""),
        "jti not a string": claims_for(client_id, now, jti=12345),
    }


@pytest.mark.parametrize("case", list(_bad_claims("x", 0)))
async def test_bad_claims_are_refused(client: httpx.AsyncClient, rsa_client: str,
                                      clock: FakeClock, case: str) -> None:
    claims = _bad_claims(rsa_client, int(clock()))[case]
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"), claims)))


async def test_replayed_jti_is_refused(client: httpx.AsyncClient, rsa_client: str,
                                       clock: FakeClock) -> None:
    claims = claims_for(rsa_client, clock())
    assert (await token(client, sign(rsa_key("rsa-1"), claims))).status_code == 200
    # The same jti in a freshly signed assertion is a replay too (RFC 7523 §3 item 7).
    clock.advance(5)
    again = sign(rsa_key("rsa-1"), {**claims, "iat": int(clock()), "exp": int(clock()) + 60})
    assert_invalid_client(await token(client, again))
    fresh = claims_for(rsa_client, clock())
    assert (await token(client, sign(rsa_key("rsa-1"), fresh))).status_code == 200


async def test_concurrent_uses_of_one_assertion_succeed_once(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock()))
    responses = await asyncio.gather(*(token(client, assertion) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]


async def test_same_jti_from_two_clients_is_not_a_replay(
        ctx: Context, client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    other = await new_client(ctx, keys=jwks(rsa_key("rsa-1")))
    jti = "shared-jti"
    for client_id in (rsa_client, other):
        assertion = sign(rsa_key("rsa-1"), claims_for(client_id, clock(), jti=jti))
        assert (await token(client, assertion)).status_code == 200


async def test_expired_jti_records_are_purged(ctx: Context, client: httpx.AsyncClient,
                                              rsa_client: str, clock: FakeClock,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_assertion, "PURGE_ONE_IN", 1)
    old = claims_for(rsa_client, clock())
    assert (await token(client, sign(rsa_key("rsa-1"), old))).status_code == 200
    clock.advance(200)  # past exp + leeway of the first assertion
    assert (await token(client, sign(rsa_key("rsa-1"),
                                     claims_for(rsa_client, clock())))).status_code == 200
    async with ctx.db.transaction() as session:
        rows = (await session.scalars(UsedAssertion.__table__.select())).all()
    # The record of the first assertion is gone; the second one's is kept until exp + 60 s.
    assert len(rows) == 1
    async with ctx.db.transaction() as session:
        row = (await session.execute(UsedAssertion.__table__.select())).one()
    assert row.expires_at == int(clock()) + 60 + 60


# --- signature and header ----------------------------------------------------------------------


def hs256_with_public_key(key: RSAKey, claims: dict[str, Any]) -> str:
    """The classic algorithm confusion: HMAC keyed with the verifier's public key (PEM)."""
    pem = key.raw_value.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS256', 'kid': key.kid})}.{b64(claims)}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def unsigned(claims: dict[str, Any], kid: str) -> str:
    return f"{b64({'alg': 'none', 'kid': kid})}.{b64(claims)}."


async def test_alg_none_is_refused(client: httpx.AsyncClient, rsa_client: str,
                                   clock: FakeClock) -> None:
    assert_invalid_client(await token(client, unsigned(claims_for(rsa_client, clock()),
                                                       "rsa-1")))


async def test_hs256_keyed_with_the_public_key_is_refused(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    assertion = hs256_with_public_key(rsa_key("rsa-1"), claims_for(rsa_client, clock()))
    assert_invalid_client(await token(client, assertion))


async def test_signature_by_another_key_is_refused(client: httpx.AsyncClient, rsa_client: str,
                                                   clock: FakeClock) -> None:
    impostor = rsa_key("impostor")
    header = {"alg": "RS256", "kid": "rsa-1"}  # claims the client's kid
    assertion = jwt.encode(header, claims_for(rsa_client, clock()), impostor,
                           algorithms=["RS256"])
    assert_invalid_client(await token(client, assertion))


async def test_tampered_claims_are_refused(client: httpx.AsyncClient, rsa_client: str,
                                           clock: FakeClock) -> None:
    header, _, signature = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock())).split(".")
    forged = b64(claims_for(rsa_client, clock(), exp=int(clock()) + 3600))
    assert_invalid_client(await token(client, f"{header}.{forged}.{signature}"))


@pytest.mark.parametrize("kid", [None, "ec-1", "attacker"])
async def test_embedded_keys_in_the_header_are_ignored(
        ctx: Context, client: httpx.AsyncClient, clock: FakeClock, kid: str | None) -> None:
    client_id = await new_client(ctx, keys=jwks(ec_key("ec-1")))
    requests: list[httpx.Request] = []
    ctx.http_transport = httpx.MockTransport(
        lambda r: requests.append(r) or httpx.Response(200, json=jwks(ec_key("attacker"))))
    attacker = ec_key("attacker")
    header: dict[str, Any] = {
        "alg": "ES256", "jwk": attacker.as_dict(private=False),
        "jku": "https://attacker.example/jwks", "x5u": "https://attacker.example/cert",
    }
    if kid:
        header["kid"] = kid
    assertion = jwt.encode(header, claims_for(client_id, clock()), attacker,
                           algorithms=["ES256"])
    response = await token(client, assertion)
    assert_invalid_client(response)
    assert response.json()["error_description"] in (
        "client_assertion signature is invalid",
        "no registered key of the client matches the client_assertion")
    assert requests == []  # jku / x5u are never fetched


async def test_unknown_crit_header_is_refused(ctx: Context, client: httpx.AsyncClient,
                                              clock: FakeClock) -> None:
    client_id = await new_client(ctx, keys=jwks(ec_key("ec-1")))
    good = sign(ec_key("ec-1"), claims_for(client_id, clock()), x_custom="ignored")
    assert (await token(client, good)).status_code == 200
    critical = sign(ec_key("ec-1"), claims_for(client_id, clock()), crit=["x_custom"],
                    x_custom="must be understood")
    assert_invalid_client(await token(client, critical))


@pytest.mark.parametrize("assertion", [
    "", "not-a-jwt", "a.b", "a.b.c", f"{b64({'alg': 'RS256'})}.{b64(b'[1, 2]')}.c",
    f"{b64({'alg': 'RS256'})}.{b64(b'not json')}.c",
    b64(b'["alg"]') + "." + b64({}) + ".c",  # a header that is not an object
    b64(b'"RS256"') + "." + b64({}) + ".c",
    f"{b64({'alg': ['RS256']})}.{b64({})}.c",
])
async def test_malformed_assertions_are_refused(client: httpx.AsyncClient, rsa_client: str,
                                                assertion: str) -> None:
    assert_invalid_client(await token(client, assertion))


async def test_kid_must_be_a_string(client: httpx.AsyncClient, rsa_client: str,
                                    clock: FakeClock) -> None:
    any_kid = jws.JWSRegistry(header_registry={"kid": HeaderParameter("kid", lambda v: None)},
                              algorithms=["RS256"])
    assertion = jwt.encode({"alg": "RS256", "kid": 1}, claims_for(rsa_client, clock()),
                           rsa_key("rsa-1"), registry=any_kid)
    assert_invalid_client(await token(client, assertion))


async def test_oversized_assertion_is_refused_before_parsing(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    padding = "x" * (16 * 1024)
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock(), padding=padding))
    response = await token(client, assertion)
    assert_invalid_client(response)
    assert response.json()["error_description"] == "client_assertion is too large"


# --- which method a client may use -------------------------------------------------------------


async def test_secret_client_cannot_use_an_assertion(ctx: Context, client: httpx.AsyncClient,
                                                     clock: FakeClock) -> None:
    app = await make_app(ctx, grant_types=["client_credentials"], scopes=["orders:read"])
    assertion = sign(rsa_key("rsa-1"), claims_for(app.client_id, clock()))
    refused = await token(client, assertion)
    assert_invalid_client(refused)
    assert refused.json()["error_description"] == "Client authentication failed"
    assert (await client.post("/token", data={"grant_type": "client_credentials"},
                              headers=app.basic())).status_code == 200


@pytest.mark.parametrize("style", ["basic", "post", "none"])
async def test_private_key_jwt_client_cannot_use_a_secret(
        client: httpx.AsyncClient, rsa_client: str, style: str) -> None:
    data = {"grant_type": "client_credentials"}
    headers = {}
    if style == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{rsa_client}:".encode()).decode()
    elif style == "post":
        data.update(client_id=rsa_client, client_secret="")
    else:
        data.update(client_id=rsa_client)
    assert_invalid_client(await client.post("/token", data=data, headers=headers))


async def test_client_id_must_match_the_assertion(ctx: Context, client: httpx.AsyncClient,
                                                  rsa_client: str, clock: FakeClock) -> None:
    other = await new_client(ctx, keys=jwks(rsa_key("rsa-1")))
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock()))
    assert_invalid_client(await token(client, assertion, client_id=other))
    assert (await token(client, assertion, client_id=rsa_client)).status_code == 200


async def test_other_assertion_types_are_refused(client: httpx.AsyncClient, rsa_client: str,
                                                 clock: FakeClock) -> None:
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock()))
    response = await token(client, assertion,
                           client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
    assert_invalid_client(response)


async def test_assertion_and_secret_together_are_refused(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    assertion = sign(rsa_key("rsa-1"), claims_for(rsa_client, clock()))
    response = await token(client, assertion, client_secret="anything")
    # RFC 6749 §2.3: one authentication method per request.
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_discovery_advertises_private_key_jwt(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    algs = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert set(algs) == {"RS256", "ES256", "PS256"}
    assert meta["revocation_endpoint_auth_signing_alg_values_supported"] == algs
    assert meta["introspection_endpoint_auth_signing_alg_values_supported"] == algs


async def test_assertion_authenticates_at_introspection(
        client: httpx.AsyncClient, rsa_client: str, clock: FakeClock) -> None:
    issued = await token(client, sign(rsa_key("rsa-1"), claims_for(rsa_client, clock())))
    access_token = issued.json()["access_token"]
    response = await client.post("/introspect", data={
        "token": access_token, "client_assertion_type": JWT_BEARER,
        "client_assertion": sign(rsa_key("rsa-1"), claims_for(rsa_client, clock()))})
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"jwks": {"keys": [rsa_key("rsa-1").as_dict(private=True)]}},
     "jwks: the JWK set holds private key material"),
    ({"jwks": {"keys": [{**ec_key("ec-1").as_dict(private=False),
                         "d": "AAAA"}]}}, "jwks: the JWK set holds private key material"),
    ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
     "jwks: the JWK set holds private key material"),
    ({"jwks": {"keys": []}}, "jwks: the JWK set has no RSA or P-256 signing key"),
    ({"jwks": {"keys": [{"kty": "RSA", "n": "AQAB"}]}}, "jwks: a key of the JWK set is malformed"),
    ({"jwks": [1]}, "jwks: a JWK set is an object with a keys array"),
    ({"jwks_uri": "http://keys.app.example/jwks"}, "jwks_uri must use https"),
    ({"jwks_uri": "https://user:pw@keys.app.example/jwks"},
     "jwks_uri must be an absolute URL without user information or fragment"),
    ({}, "a private_key_jwt client needs either jwks or jwks_uri"),
    ({"jwks": {"keys": []}, "jwks_uri": JWKS_URI},
     "a private_key_jwt client needs either jwks or jwks_uri"),
])
async def test_registration_refuses_unusable_keys(ctx: Context, kwargs: dict[str, Any],
                                                  message: str) -> None:
    with pytest.raises(admin.InvalidInput) as caught:
        await admin.create_client(ctx, name="App", redirect_uris=[], grant_types=[
            "client_credentials"], scopes=["orders:read"],
            token_endpoint_auth_method="private_key_jwt", **kwargs)
    assert str(caught.value) == message


async def test_registration_refuses_keys_for_secret_clients(ctx: Context) -> None:
    with pytest.raises(admin.InvalidInput) as caught:
        await admin.create_client(ctx, name="App", redirect_uris=[], grant_types=[
            "client_credentials"], scopes=["orders:read"], jwks=jwks(rsa_key("rsa-1")))
    assert str(caught.value) == "jwks and jwks_uri are for private_key_jwt clients"


def test_cli_registers_a_private_key_jwt_client(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "jwks.json"
    key_file.write_text(json.dumps(jwks(ec_key("ec-1"))))
    with throwaway_database(tmp_path) as url:
        for name, value in {"IDP_DATABASE_URL": url, "IDP_ISSUER": ISSUER,
                            "IDP_KEY_ENCRYPTION_SECRET": TEST_SECRET}.items():
            monkeypatch.setenv(name, value)
        assert main(["migrate"]) == 0
        create = ["clients", "create", "--name", "Backend", "--redirect-uri",
                  "https://app.example/cb", "--grant-type", "client_credentials",
                  "--scope", "orders:read", "--auth-method", "private_key_jwt", "--json"]
        capsys.readouterr()
        assert main([*create, "--jwks-uri", "http://keys.app.example/jwks"]) == 2
        assert capsys.readouterr().err == "idp: jwks_uri must use https\n"
        assert main([*create, "--jwks-file", str(key_file)]) == 0
        created = json.loads(capsys.readouterr().out)
        assert created["token_endpoint_auth_method"] == "private_key_jwt"
        assert "client_secret" not in created
        status = asyncio.run(_client_credentials_on(url, created["client_id"]))
    assert status == 200


async def _client_credentials_on(url: str, client_id: str) -> int:
    settings = make_settings(url)
    ctx = build_context(settings)
    try:
        await ctx.keys.ensure_keys()
        transport = httpx.ASGITransport(app=create_app(settings, ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            assertion = sign(ec_key("ec-1"), claims_for(client_id, ctx.now()))
            return (await token(http, assertion)).status_code
    finally:
        await ctx.close()


# --- jwks_uri ----------------------------------------------------------------------------------


class KeyServer:
    """The client's server, publishing whatever key set it holds now."""

    def __init__(self, *keys: Key) -> None:
        self.document = jwks(*keys)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.document)


@pytest.fixture
async def published(ctx: Context, monkeypatch: pytest.MonkeyPatch
                    ) -> AsyncIterator[tuple[str, KeyServer]]:
    server = KeyServer(rsa_key("rsa-1"))
    ctx.http_transport = httpx.MockTransport(server)
    fake_dns(monkeypatch, PUBLIC_IP)
    yield await new_client(ctx, jwks_uri=JWKS_URI), server


async def test_jwks_uri_keys_are_fetched_and_cached(client: httpx.AsyncClient, clock: FakeClock,
                                                    published: tuple[str, KeyServer]) -> None:
    client_id, server = published
    for _ in range(3):
        response = await token(client, sign(rsa_key("rsa-1"), claims_for(client_id, clock())))
        assert response.status_code == 200, response.text
    assert len(server.requests) == 1
    request = server.requests[0]
    # Connected to the address that was checked; the name stays in Host and SNI.
    assert request.url == f"https://{PUBLIC_IP}/jwks.json"
    assert request.headers["host"] == "keys.app.example"
    assert request.extensions["sni_hostname"] == "keys.app.example"
    clock.advance(301)  # the cached set is 5 minutes old
    assert (await token(client, sign(rsa_key("rsa-1"),
                                     claims_for(client_id, clock())))).status_code == 200
    assert len(server.requests) == 2


async def test_rotated_key_is_fetched_on_unknown_kid(client: httpx.AsyncClient,
                                                     clock: FakeClock,
                                                     published: tuple[str, KeyServer]) -> None:
    client_id, server = published
    assert (await token(client, sign(rsa_key("rsa-1"),
                                     claims_for(client_id, clock())))).status_code == 200
    # oidcc-refresh-token-rp-key-rotation: the app publishes a new key and uses it at once.
    server.document = jwks(rsa_key("rsa-2"))
    clock.advance(2)
    response = await token(client, sign(rsa_key("rsa-2"), claims_for(client_id, clock())))
    assert response.status_code == 200, response.text
    assert len(server.requests) == 2
    # The retired key has left the published set.
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"),
                                                   claims_for(client_id, clock()))))


async def test_unknown_kids_refetch_at_most_once_a_minute(
        client: httpx.AsyncClient, clock: FakeClock, published: tuple[str, KeyServer]) -> None:
    client_id, server = published
    assert (await token(client, sign(rsa_key("rsa-1"),
                                     claims_for(client_id, clock())))).status_code == 200
    header = {"alg": "RS256"}
    for n in range(5):
        garbage = jwt.encode({**header, "kid": f"garbage-{n}"}, claims_for(client_id, clock()),
                             rsa_key("rsa-1"), algorithms=["RS256"])
        assert_invalid_client(await token(client, garbage))
        clock.advance(10)
    assert len(server.requests) == 2  # the first garbage kid fetched once more; no others
    clock.advance(20)  # 60 s since that re-fetch
    garbage = jwt.encode({**header, "kid": "garbage-late"}, claims_for(client_id, clock()),
                         rsa_key("rsa-1"), algorithms=["RS256"])
    assert_invalid_client(await token(client, garbage))
    assert len(server.requests) == 3


async def test_unreachable_jwks_uri_fails_closed_and_backs_off(
        ctx: Context, client: httpx.AsyncClient, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    ctx.http_transport = httpx.MockTransport(down)
    fake_dns(monkeypatch, PUBLIC_IP)
    client_id = await new_client(ctx, jwks_uri=JWKS_URI)
    for _ in range(3):
        assert_invalid_client(await token(client, sign(rsa_key("rsa-1"),
                                                       claims_for(client_id, clock()))))
    assert len(calls) == 1
    clock.advance(10)
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"),
                                                   claims_for(client_id, clock()))))
    assert len(calls) == 2


@pytest.mark.parametrize("address", ["10.0.0.1", "127.0.0.1", "169.254.169.254"])
async def test_jwks_uri_on_a_private_address_is_not_fetched(
        ctx: Context, client: httpx.AsyncClient, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    server = KeyServer(rsa_key("rsa-1"))
    ctx.http_transport = httpx.MockTransport(server)
    looked_up = fake_dns(monkeypatch, address)
    client_id = await new_client(ctx, jwks_uri=JWKS_URI)
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"),
                                                   claims_for(client_id, clock()))))
    assert looked_up == ["keys.app.example"]
    assert server.requests == []


async def test_published_private_keys_are_refused(ctx: Context, client: httpx.AsyncClient,
                                                  clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.http_transport = httpx.MockTransport(lambda r: httpx.Response(
        200, json={"keys": [rsa_key("rsa-1").as_dict(private=True)]}))
    fake_dns(monkeypatch, PUBLIC_IP)
    client_id = await new_client(ctx, jwks_uri=JWKS_URI)
    assert_invalid_client(await token(client, sign(rsa_key("rsa-1"),
                                                   claims_for(client_id, clock()))))


# --- the fetcher -------------------------------------------------------------------------------


Handler = Callable[[httpx.Request], Any]


async def fetch(handler: Handler, url: str = JWKS_URI, **kwargs: Any) -> dict[str, Any]:
    async with new_http_client(httpx.MockTransport(handler)) as http:
        return await fetch_json(http, url, **kwargs)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"keys": []})


async def test_fetch_returns_the_json_object(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP, "2606:4700::1111")
    assert await fetch(ok) == {"keys": []}


@pytest.mark.parametrize(("url", "message"), [
    ("http://keys.app.example/jwks", "only https URLs are fetched"),
    ("ftp://keys.app.example/jwks", "only https URLs are fetched"),
    ("https://user:pw@keys.app.example/jwks", "the URL needs a host and no user information"),
    ("https:///jwks", "the URL needs a host and no user information"),
])
async def test_fetch_refuses_urls(monkeypatch: pytest.MonkeyPatch, url: str,
                                  message: str) -> None:
    looked_up = fake_dns(monkeypatch, PUBLIC_IP)
    with pytest.raises(FetchError) as caught:
        await fetch(ok, url)
    assert str(caught.value) == message
    assert looked_up == []


@pytest.mark.parametrize("addresses", [
    ("10.0.0.1",), ("127.0.0.1",), ("169.254.169.254",), ("192.168.1.1",), ("100.64.0.1",),
    ("0.0.0.0",), ("224.0.0.1",), ("::1",), ("fe80::1",), ("fc00::1",),  # noqa: S104
    ("::ffff:127.0.0.1",),
    ("64:ff9b::a00:1",), ("2002:a00:1::1",),
    (PUBLIC_IP, "10.0.0.1"),  # every address is checked, not only the first
])
async def test_fetch_refuses_non_public_addresses(monkeypatch: pytest.MonkeyPatch,
                                                  addresses: tuple[str, ...]) -> None:
    requests: list[httpx.Request] = []
    fake_dns(monkeypatch, *addresses)
    with pytest.raises(FetchError) as caught:
        await fetch(lambda r: requests.append(r) or ok(r))
    assert str(caught.value) == "keys.app.example resolves to a non-public address"
    assert requests == []


async def test_fetch_allows_http_and_loopback_in_dev_mode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up = fake_dns(monkeypatch, "127.0.0.1")
    assert await fetch(ok, "http://127.0.0.1:3000/jwks", allow_private=True) == {"keys": []}
    assert looked_up == []


async def test_fetch_unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    async def getaddrinfo(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchError) as caught:
        await fetch(ok)
    assert str(caught.value) == "cannot resolve keys.app.example"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_fetch_does_not_follow_redirects(monkeypatch: pytest.MonkeyPatch,
                                               status: int) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    requests: list[httpx.Request] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, headers={"Location": "http://169.254.169.254/latest"})

    with pytest.raises(FetchError) as caught:
        await fetch(redirect)
    assert str(caught.value) == f"redirects are not followed (status {status})"
    assert len(requests) == 1


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(404), "status 404"),
    (httpx.Response(200, content=b"<html>"), "the body is not JSON"),
    (httpx.Response(200, json=[{"kty": "RSA"}]), "the body is not a JSON object"),
    (httpx.Response(200, content=b"[" * 100_000), "the body is not JSON"),
    (httpx.Response(200, content=b"x", headers={"Content-Encoding": "gzip"}),
     "compressed bodies are not accepted"),
    (httpx.Response(200, content=b" " * (256 * 1024 + 1)), "the body exceeds 262144 bytes"),
])
async def test_fetch_refuses_bad_answers(monkeypatch: pytest.MonkeyPatch,
                                         response: httpx.Response, message: str) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    with pytest.raises(FetchError) as caught:
        await fetch(lambda r: response)
    assert str(caught.value) == message


async def test_fetch_stops_reading_an_endless_body(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield b" " * 65536

    with pytest.raises(FetchError) as caught:
        await fetch(lambda r: httpx.Response(200, content=endless()))
    assert str(caught.value) == "the body exceeds 262144 bytes"
    assert len(sent) == 5  # stopped at the first chunk past 256 KiB


async def test_fetch_gives_up_after_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)  # a server that never answers in time
        return httpx.Response(200, json={})

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(FetchError) as caught:
        await fetch(slow, time_limit=0.05)
    assert str(caught.value) == "no complete answer within 0.05 s"
    assert loop.time() - started < 1


async def test_fetch_transport_errors_are_fetch_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, PUBLIC_IP)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FetchError) as caught:
        await fetch(refuse)
    assert str(caught.value) == "request failed (ConnectError)"


def test_shared_client_never_follows_redirects_or_reads_proxies() -> None:
    http = new_http_client()
    assert http.follow_redirects is False
    assert http.trust_env is False
    assert http.timeout == httpx.Timeout(2.0)


async def test_context_closes_its_http_client(settings: Any, clock: FakeClock) -> None:
    ctx = build_context(settings, clock=clock)
    http = ctx.http()
    assert ctx.http() is http
    await ctx.close()
    assert http.is_closed
