"""Tokens whose signature was checked are remembered for a short while (KeyManager.verify_own),
so a backend presenting the same access token on every call does not pay the check each
time. The memory must never accept what the check would refuse: another `typ`, a changed
token, a key the key set no longer publishes."""

from __future__ import annotations

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import delete

from idp.services.context import Context
from idp.services.tokens import signing_keys
from idp.settings import Settings
from idp.store.models import SigningKey
from tests.conftest import FakeClock, make_settings
from tests.helpers import Flow, get_code, make_app, make_user, redeem

PRODUCTION = Settings.model_fields["key_cache_seconds"].default


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, key_cache_seconds=PRODUCTION)


async def tokens(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    await make_user(ctx)
    flow = Flow(await make_app(ctx))
    response = await redeem(client, flow, await get_code(client, flow))
    assert response.status_code == 200
    return response.json()


async def test_a_remembered_token_is_only_good_for_the_typ_it_was_checked_for(
        client: httpx.AsyncClient, ctx: Context) -> None:
    issued = await tokens(client, ctx)
    # Checked once as an id_token_hint (any typ), an ID token is still no access token.
    assert await ctx.keys.verify_own(issued["id_token"], typ=None) is not None
    assert await ctx.keys.verify_own(issued["id_token"], typ="at+jwt") is None
    userinfo = await client.get("/userinfo",
                                headers={"Authorization": f"Bearer {issued['id_token']}"})
    assert userinfo.status_code == 401


async def test_a_changed_token_is_checked_afresh(client: httpx.AsyncClient,
                                                 ctx: Context) -> None:
    access = (await tokens(client, ctx))["access_token"]
    claims = await ctx.keys.verify_own(access, typ="at+jwt")
    assert claims is not None
    claims["sub"] = "someone else"  # what a caller does with its copy stays its own
    assert (await ctx.keys.verify_own(access, typ="at+jwt") or {}).get("sub") != "someone else"
    head, body, signature = access.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert await ctx.keys.verify_own(f"{head}.{body}.{flipped}", typ="at+jwt") is None
    assert await ctx.keys.verify_own(f"{head}.{body}x.{signature}", typ="at+jwt") is None


async def test_a_key_no_longer_published_is_not_trusted_through_the_memory(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    access = (await tokens(client, ctx))["access_token"]
    assert await ctx.keys.verify_own(access, typ="at+jwt") is not None
    kid = pyjwt.get_unverified_header(access)["kid"]
    # The key is rotated out and then withdrawn from the key set altogether.
    await ctx.keys.rotate((ctx.settings.access_token_signing_alg,))
    async with ctx.db.transaction() as session:
        await session.execute(delete(SigningKey).where(SigningKey.kid == kid))
    # Once this replica's key set is reloaded without it, the token is refused.
    clock.advance(ctx.settings.key_cache_seconds)
    assert await ctx.keys.verify_own(access, typ="at+jwt") is None


async def test_the_memory_is_bounded(client: httpx.AsyncClient, ctx: Context,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signing_keys, "VERIFIED_CACHE_SIZE", 8)
    ring = await ctx.keys.ring()
    issued = [ring.sign({"iss": ctx.settings.issuer, "n": n}, alg="ES256", typ="at+jwt")
              for n in range(20)]
    for token in issued:
        assert await ctx.keys.verify_own(token, typ="at+jwt") is not None
    assert len(ctx.keys._verified) == 8
    # The oldest went first; every token still verifies, remembered or not.
    for n, token in enumerate(issued):
        assert (await ctx.keys.verify_own(token, typ="at+jwt") or {}).get("n") == n
