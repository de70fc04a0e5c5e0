"""Signing keys: what the JWKS publishes, how keys are kept at rest, and rotation as a client
sees it (tokens verified with PyJWT against the published key set, not with our own code)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import text

from idp.crypto.keys import KeyEncryptor
from idp.services.context import Context, build_context
from tests.conftest import ISSUER, TEST_SECRET, FakeClock, make_settings
from tests.helpers import Flow, get_code, make_app, make_user, redeem

PRIVATE_PARAMETERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}
WRONG_SECRET = "another-key-encryption-secret-0123456789"
DECRYPT_ERROR = ("cannot decrypt a signing key: IDP_KEY_ENCRYPTION_SECRET differs from the one "
                 "the keys were stored with")


async def jwks(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids)), "kids must be unique"
    return {k["kid"]: k for k in keys}


def verify(id_token: str, published: dict[str, dict[str, Any]], audience: str) -> dict[str, Any]:
    header = pyjwt.get_unverified_header(id_token)
    assert header["kid"] in published, "signed with a key that is not published"
    key = pyjwt.PyJWK(published[header["kid"]])
    claims: dict[str, Any] = pyjwt.decode(id_token, key.key, algorithms=[header["alg"]],
                                          audience=audience, issuer=ISSUER)
    return claims


async def id_token(client: httpx.AsyncClient, flow: Flow) -> str:
    response = await redeem(client, flow, await get_code(client, flow))
    assert response.status_code == 200, response.text
    token: str = response.json()["id_token"]
    return token


async def test_jwks_publishes_an_rs256_and_an_es256_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/jwks")
    assert response.headers["content-type"] == "application/jwk-set+json"
    published = await jwks(client)
    by_alg = {k["alg"] for k in published.values()}
    assert by_alg == {"RS256", "ES256"}
    for key in published.values():
        assert key["use"] == "sig"
        assert not PRIVATE_PARAMETERS & set(key), f"private parameters published: {key}"
        if key["alg"] == "RS256":
            assert key["kty"] == "RSA"
            assert len(pyjwt.utils.base64url_decode(key["n"])) * 8 >= 2048
        else:
            assert (key["kty"], key["crv"]) == ("EC", "P-256")
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert metadata["jwks_uri"] == f"{ISSUER}/jwks"
    assert set(metadata["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}


async def test_private_halves_are_encrypted_at_rest(ctx: Context) -> None:
    async with ctx.db.transaction() as session:
        rows = (await session.execute(text("SELECT * FROM signing_keys"))).mappings().all()
    assert {row["alg"] for row in rows} == {"RS256", "ES256"}
    encryptor = KeyEncryptor(TEST_SECRET)
    for row in rows:
        private = encryptor.decrypt(row["private_jwk_encrypted"])
        stored = " ".join(str(value) for value in row.values())
        # Neither the private exponent/scalar nor any other private parameter is in clear.
        for name in PRIVATE_PARAMETERS & set(private):
            assert private[name] not in stored, f"{name} of {row['kid']} stored in clear"
        public = row["public_jwk"] if isinstance(row["public_jwk"], dict) else json.loads(
            row["public_jwk"])
        assert not PRIVATE_PARAMETERS & set(public)
        assert private["kid"] == public["kid"] == row["kid"]
    with pytest.raises(RuntimeError, match="IDP_KEY_ENCRYPTION_SECRET differs"):
        KeyEncryptor(WRONG_SECRET).decrypt(rows[0]["private_jwk_encrypted"])


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_rotation_keeps_old_tokens_verifiable_until_they_expire(
    ctx: Context, client: httpx.AsyncClient, clock: FakeClock, alg: str,
) -> None:
    app = await make_app(ctx, id_token_signed_response_alg=alg)
    await make_user(ctx)
    before = await id_token(client, Flow(app))
    old_kid = pyjwt.get_unverified_header(before)["kid"]
    assert verify(before, await jwks(client), app.client_id)["iss"] == ISSUER

    await ctx.keys.rotate()

    published = await jwks(client)
    assert old_kid in published
    assert verify(before, published, app.client_id)["aud"] == app.client_id
    after = await id_token(client, Flow(app))
    new_kid = pyjwt.get_unverified_header(after)["kid"]
    assert new_kid != old_kid
    assert pyjwt.get_unverified_header(after)["alg"] == alg
    assert verify(after, published, app.client_id)["aud"] == app.client_id

    # The retired key stays published while its tokens may live, then leaves the JWKS.
    clock.advance(ctx.keys.retired_key_lifetime() - 1)
    assert old_kid in await jwks(client)
    clock.advance(2)
    published = await jwks(client)
    assert old_kid not in published
    assert new_kid in published
    assert {k["alg"] for k in published.values()} == {"RS256", "ES256"}
    with pytest.raises(AssertionError, match="not published"):
        verify(before, published, app.client_id)


async def test_retired_key_outlives_every_token_it_signed(ctx: Context) -> None:
    s = ctx.settings
    assert ctx.keys.retired_key_lifetime() > max(s.id_token_ttl, s.access_token_ttl)


async def test_wrong_key_encryption_secret_is_a_clear_error(
    ctx: Context, database_url: str, clock: FakeClock,
) -> None:
    wrong = build_context(make_settings(database_url, key_encryption_secret=WRONG_SECRET),
                          clock=clock)
    try:
        with pytest.raises(RuntimeError) as raised:
            await wrong.keys.ring()
        assert str(raised.value) == DECRYPT_ERROR
    finally:
        await wrong.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_serve_refuses_to_start_with_a_wrong_secret(ctx: Context, database_url: str) -> None:
    """The keys in the database were stored under TEST_SECRET; `idp serve` must say so at
    start-up instead of serving 500s on every token request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=database_url, IDP_ISSUER=ISSUER,
               IDP_KEY_ENCRYPTION_SECRET=WRONG_SECRET)
    idp = os.path.join(os.path.dirname(sys.executable), "idp")
    result = await asyncio.to_thread(
        subprocess.run, [idp, "serve", "--port", str(free_port())], env=env,
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"idp: {DECRYPT_ERROR}"
    assert "idp serving" not in result.stdout


async def test_replicas_starting_together_make_one_set_of_keys(
        settings: Any, ctx: Context, clock: FakeClock) -> None:
    """Three processes start at once on a database without keys: one signing key and one
    published next key per algorithm, not three of each."""
    async with ctx.db.transaction() as session:
        await session.execute(text("DELETE FROM signing_keys"))
    replicas = [build_context(settings, clock=clock) for _ in range(3)]
    try:
        created = await asyncio.gather(*(r.keys.ensure_keys() for r in replicas))
        assert sorted(len(kids) for kids in created) == [0, 0, 4]
        ring = await replicas[0].keys.ring()
        assert len(json.loads(ring.jwks_json)["keys"]) == 4
    finally:
        for replica in replicas:
            await replica.close()
