"""Signing-key rotation (REL-06, OIDC Core §10.1.1): next key published before use, current key
signs, retired keys stay published until every token they signed has expired."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest

from idp.services.context import Context
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem


async def jwks_by_kid(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    return {k["kid"]: k for k in (await client.get("/jwks")).json()["keys"]}


def verify(token: str, jwks: dict[str, dict[str, str]], audience: str) -> dict[str, object]:
    header = pyjwt.get_unverified_header(token)
    key = pyjwt.PyJWK(jwks[header["kid"]])
    return pyjwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience,
                        issuer=ISSUER)


async def issue(client: httpx.AsyncClient, app: App) -> dict[str, str]:
    flow = Flow(app)
    code = await get_code(client, flow)
    return (await redeem(client, flow, code)).json()


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx)


async def test_jwks_publishes_current_and_next_keys_per_algorithm(
        client: httpx.AsyncClient, ctx: Context) -> None:
    keys = (await client.get("/jwks")).json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "RS256", "RS256"]
    assert len({k["kid"] for k in keys}) == 4
    assert all("d" not in k and k["use"] == "sig" for k in keys)
    ring = await ctx.keys.ring()
    signing = {alg: key.kid for alg, key in ring.signing.items()}
    assert set(signing) == {"RS256", "ES256"}


async def test_rotation_promotes_the_prepublished_key(client: httpx.AsyncClient, ctx: Context,
                                                      shop: App) -> None:
    before = await jwks_by_kid(client)
    old_tokens = await issue(client, shop)
    old_kid = pyjwt.get_unverified_header(old_tokens["id_token"])["kid"]
    new_active = await ctx.keys.rotate()
    # The key that now signs was published before it was used.
    assert set(new_active) <= set(before)
    after = await jwks_by_kid(client)
    assert old_kid in after  # retired, still published
    assert len(after) == 6  # retired + active + next, for both algorithms
    # A token signed before the rotation still verifies, at the JWKS and at introspection.
    verify(old_tokens["id_token"], after, shop.client_id)
    verify(old_tokens["access_token"], after, ISSUER)
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    introspected = await client.post("/introspect", data={"token": old_tokens["access_token"]},
                                     headers=api.basic())
    assert introspected.json()["active"] is True
    # A token issued after is signed by the new key.
    new_tokens = await issue(client, shop)
    new_kid = pyjwt.get_unverified_header(new_tokens["id_token"])["kid"]
    assert new_kid != old_kid and new_kid in new_active
    verify(new_tokens["id_token"], after, shop.client_id)


async def test_retired_keys_leave_the_jwks_after_their_tokens_expire(
        client: httpx.AsyncClient, ctx: Context, shop: App, clock: FakeClock) -> None:
    tokens = await issue(client, shop)
    old_kid = pyjwt.get_unverified_header(tokens["id_token"])["kid"]
    await ctx.keys.rotate()
    lifetime = ctx.keys.retired_key_lifetime()
    assert lifetime >= max(ctx.settings.id_token_ttl, ctx.settings.access_token_ttl)
    clock.advance(lifetime - 1)
    assert old_kid in await jwks_by_kid(client)
    clock.advance(2)
    assert old_kid not in await jwks_by_kid(client)
    assert len(await jwks_by_kid(client)) == 4


async def test_automatic_rotation_after_the_configured_period(
        ctx: Context, database_url: str, clock: FakeClock) -> None:
    from idp.services.context import build_context

    settings = make_settings(database_url, key_rotation_days=30)
    periodic = build_context(settings, clock=clock)  # a replica configured to rotate
    try:
        keys = periodic.keys
        first = {alg: key.kid for alg, key in (await keys.ring(force=True)).signing.items()}
        clock.advance(29 * 86_400)
        assert await keys.rotate_if_due() == []
        clock.advance(2 * 86_400)
        rotated = await keys.rotate_if_due()
        assert len(rotated) == 2
        now = {alg: key.kid for alg, key in (await keys.ring(force=True)).signing.items()}
        assert now != first and set(now.values()) == set(rotated)
        # Another replica running the same check right after does nothing.
        assert await keys.rotate_if_due() == []
    finally:
        await periodic.close()


async def test_other_replicas_pick_up_a_rotation(client: httpx.AsyncClient, ctx: Context,
                                                 shop: App, database_url: str,
                                                 clock: FakeClock) -> None:
    """A rotation done elsewhere (the CLI, another replica) is used without a restart."""
    from idp.services.context import build_context

    other = build_context(make_settings(database_url), clock=clock)
    try:
        rotated = await other.keys.rotate()
    finally:
        await other.close()
    tokens = await issue(client, shop)
    assert pyjwt.get_unverified_header(tokens["id_token"])["kid"] in rotated


async def test_cli_rotation_keeps_earlier_tokens_valid(
        client: httpx.AsyncClient, ctx: Context, shop: App, database_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 3, done-when: a token issued before `idp keys rotate` still verifies; the JWKS
    holds old and new keys; a token issued after is signed by the new key."""
    import asyncio
    import json

    from idp.cli import main as idp_cli

    for name, value in {"IDP_DATABASE_URL": database_url, "IDP_ISSUER": ISSUER,
                        "IDP_KEY_ENCRYPTION_SECRET": ctx.settings.resolved_key_secret()}.items():
        monkeypatch.setenv(name, value)
    before = await issue(client, shop)
    old_kid = pyjwt.get_unverified_header(before["id_token"])["kid"]
    assert await asyncio.to_thread(idp_cli, ["keys", "rotate", "--json"]) == 0
    new_kids = json.loads(capsys.readouterr().out)["active"]
    jwks = await jwks_by_kid(client)
    assert old_kid in jwks and set(new_kids) <= set(jwks)
    verify(before["id_token"], jwks, shop.client_id)
    verify(before["access_token"], jwks, ISSUER)
    after = await issue(client, shop)
    assert pyjwt.get_unverified_header(after["id_token"])["kid"] in new_kids
    assert pyjwt.get_unverified_header(after["access_token"])["kid"] in new_kids
