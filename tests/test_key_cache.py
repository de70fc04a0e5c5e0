"""The signing-key cache at its production setting (README "Signing keys"; the rest of the suite
runs with `key_cache_seconds` 0, see tests/conftest.py `make_settings`). Every replica keeps the
keys it loaded for `key_cache_seconds`; a rotation made elsewhere (`idp keys rotate`, another
replica) is used once that time has passed, and a token naming a key this replica has not
loaded makes it reload, at most once a second, so that made-up `kid`s cannot turn into
database load. Key loads are counted as the SELECTs on signing_keys this replica sends."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import event

from idp.main import create_app
from idp.services.context import Context, build_context
from idp.settings import Settings
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem, run_cli

PRODUCTION = Settings.model_fields["key_cache_seconds"].default


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, key_cache_seconds=PRODUCTION)


@pytest.fixture
def key_loads(ctx: Context) -> Iterator[list[str]]:
    """The key-set loads of this replica (not of the CLI's or another replica's engine)."""
    loads: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM signing_keys" in statement:
            loads.append(statement)

    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    yield loads
    event.remove(engine, "before_cursor_execute", before_cursor_execute)


def test_the_production_cache_time_is_long_enough_to_be_seen() -> None:
    assert PRODUCTION == 30


async def jwks(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {k["kid"]: k for k in (await client.get("/jwks")).json()["keys"]}


def kid_of(token: str) -> str:
    return str(pyjwt.get_unverified_header(token)["kid"])


def verified(token: str, published: dict[str, dict[str, Any]], audience: str
             ) -> dict[str, Any]:
    """As a client validating offline against the JWKS it just fetched would (times are
    the injected clock's, so they are checked against it, not by PyJWT)."""
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWK(published[header["kid"]])
    claims: dict[str, Any] = pyjwt.decode(
        token, key.key, algorithms=[header["alg"]], audience=audience, issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False})
    return claims


async def issue(client: httpx.AsyncClient, shop: App) -> dict[str, str]:
    flow = Flow(shop)
    response = await redeem(client, flow, await get_code(client, flow))
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def introspect(client: httpx.AsyncClient, api: App, token: str) -> dict[str, Any]:
    response = await client.post("/introspect", data={"token": token}, headers=api.basic())
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def made_up(count: int, clock: FakeClock) -> list[str]:
    """Access tokens in our format, signed by a key we never had, under `kid`s of every kind:
    random, empty, path- and SQL-like, very long, non-ASCII."""
    key = ec.generate_private_key(ec.SECP256R1())
    kinds = ["", "../../signing_keys", "' OR '1'='1", "k" * 2000, "kéy-\u202e", "null"]
    kids = (kinds + [secrets.token_urlsafe(16) for _ in range(count)])[:count]
    now = int(clock())
    return [pyjwt.encode({"iss": ISSUER, "sub": "someone", "aud": ISSUER, "client_id": "x",
                          "scope": "openid", "jti": secrets.token_urlsafe(8), "iat": now,
                          "exp": now + 600}, key, algorithm="ES256",
                         headers={"kid": kid, "typ": "at+jwt"}) for kid in kids]


async def userinfo_status(client: httpx.AsyncClient, token: str) -> tuple[int, str]:
    response = await client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.headers.get("www-authenticate", "")


async def test_a_rotation_made_elsewhere_is_used_once_the_cache_time_has_passed(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        key_loads: list[str]) -> None:
    """`idp keys rotate` run by an operator while this replica serves: it keeps signing with
    the keys it loaded until `key_cache_seconds` have passed, then signs with the new ones.
    At every moment the key a token names is in the JWKS served at that moment (the new
    signing key was published as the next key before the rotation), the rotation's new next
    keys are published at the latest when the cache time has passed, and the old key stays
    published while tokens this replica signed with it after the rotation are alive."""
    shop = await make_app(ctx)
    api = await make_app(ctx, name="API", redirect_uri="https://app.example/api",
                         grant_types=["client_credentials"], scopes=["orders:read"])
    await make_user(ctx)
    first = await issue(client, shop)
    assert len(key_loads) == 1
    old = {kind: kid_of(first[kind]) for kind in ("id_token", "access_token")}
    before = await jwks(client)
    assert set(old.values()) <= set(before)

    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "keys", "rotate", "--json")
    assert code == 0
    rotated = set(json.loads(out)["active"])
    assert len(rotated) == 2 and rotated <= set(before) and not rotated & set(old.values())

    clock.advance(PRODUCTION - 1)
    stale = await issue(client, shop)
    assert {kind: kid_of(stale[kind]) for kind in old} == old
    assert await jwks(client) == before
    verified(stale["id_token"], before, shop.client_id)
    assert len(key_loads) == 1

    clock.advance(1)
    fresh = await issue(client, shop)
    assert {kid_of(fresh["id_token"]), kid_of(fresh["access_token"])} == rotated
    after = await jwks(client)
    assert len(key_loads) == 2
    verified(fresh["id_token"], after, shop.client_id)
    verified(fresh["access_token"], after, ISSUER)
    # Retired, active and the two new next keys, which the rotation created.
    assert set(before) < set(after) and len(set(after) - set(before)) == 2 and len(after) == 6

    # The old key signed for up to PRODUCTION seconds after the rotation; those tokens live
    # their whole lifetime, for offline validators and at introspection.
    expires = verified(stale["access_token"], after, ISSUER)["exp"]
    clock.advance(expires - clock() - 1)
    late = await jwks(client)
    assert old["access_token"] in late
    verified(stale["access_token"], late, ISSUER)
    assert (await introspect(client, api, stale["access_token"]))["active"] is True


async def test_made_up_kids_reload_the_keys_once_a_second_and_a_new_replicas_key_is_accepted(
        client: httpx.AsyncClient, ctx: Context, settings: Settings, clock: FakeClock,
        key_loads: list[str]) -> None:
    """Twenty access tokens with `kid`s this replica does not know, presented within one
    second, cost at most one reload of the key set (the first may be a key another replica
    just made; the rest are refused from the loaded keys). A token another replica signed
    with a key it created after that reload is not recognised within the same second, and is
    accepted after the next second begins, with one more reload."""
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    await jwks(client)
    assert len(key_loads) == 1
    clock.advance(1)

    for token in made_up(20, clock):
        status, challenge = await userinfo_status(client, token)
        assert status == 401 and 'error="invalid_token"' in challenge
    assert len(key_loads) == 2

    replica = build_context(settings, clock=clock)
    try:
        await replica.keys.rotate()
        signing = set(await replica.keys.rotate())  # a key this replica never loaded
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=create_app(settings, ctx=replica)), base_url=ISSUER) as other:
            response = await other.post("/token", data={
                "grant_type": "client_credentials", "scope": "orders:read"},
                headers=api.basic())
    finally:
        await replica.close()
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert kid_of(token) in signing

    assert await introspect(client, api, token) == {"active": False}
    assert len(key_loads) == 2
    clock.advance(1)
    body = await introspect(client, api, token)
    assert (body["active"], body["client_id"]) == (True, api.client_id)
    assert len(key_loads) == 3
    # Known now: no further reloads for it.
    assert (await introspect(client, api, token))["active"] is True
    assert len(key_loads) == 3


async def test_made_up_kids_presented_in_parallel_reload_the_keys_at_most_once(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        key_loads: list[str]) -> None:
    """The same limit when the twenty arrive at once, as an attacker would send them."""
    await jwks(client)
    clock.advance(1)
    answers = await asyncio.gather(*(userinfo_status(client, t) for t in made_up(20, clock)))
    assert {status for status, _ in answers} == {401}
    assert len(key_loads) <= 2
