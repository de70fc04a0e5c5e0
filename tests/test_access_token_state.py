"""Access tokens have no row: each is judged by its grant's token epoch, its client and the
revocation list (its jti, its browser session, the authorization code it descends from).
What a client sees must be what it saw when every token had a row: precise revocation, and
no new token caught by an older revocation, even within the same second."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import delete, func, select

from idp.services import maintenance
from idp.services.context import Context
from idp.services.signin.sessions import end_sessions_of_user
from idp.store import tokens
from idp.store.models import Client, TokenRevocation
from idp.store.tokens import REVOCATION_KEPT_SECONDS
from tests.conftest import FakeClock
from tests.helpers import App, Flow, get_code, make_app, make_user, redeem, unverified_claims

GRANTS = ["authorization_code", "refresh_token"]
SCOPES = ["openid", "profile", "email", "offline_access"]
CC = {"grant_type": "client_credentials"}


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx, grant_types=GRANTS, scopes=SCOPES)


@pytest.fixture
async def api(ctx: Context) -> App:
    return await make_app(ctx, name="Orders API", grant_types=["client_credentials"],
                          scopes=["orders:read"])


async def issue(client: httpx.AsyncClient, shop: App) -> dict[str, str]:
    flow = Flow(shop)
    code = await get_code(client, flow, scope="openid profile offline_access")
    response = await redeem(client, flow, code)
    assert response.status_code == 200, response.text
    return response.json()


async def active(client: httpx.AsyncClient, caller: App, token: str) -> bool:
    response = await client.post("/introspect", data={"token": token}, headers=caller.basic())
    assert response.status_code == 200
    return bool(response.json()["active"])


async def userinfo_status(client: httpx.AsyncClient, token: str) -> int:
    return (await client.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
            ).status_code


async def refresh(client: httpx.AsyncClient, shop: App, token: str) -> httpx.Response:
    return await client.post("/token", data={"grant_type": "refresh_token",
                                             "refresh_token": token}, headers=shop.basic())


async def test_a_token_names_its_session_grant_epoch_and_code_chain(
        client: httpx.AsyncClient, shop: App) -> None:
    tokens = await issue(client, shop)
    first = unverified_claims(tokens["access_token"])
    assert isinstance(first["sid"], str) and first["sid"]
    assert first["epoch"] == 0
    assert isinstance(first["chain"], str) and len(first["chain"]) == 32
    refreshed = (await refresh(client, shop, tokens["refresh_token"])).json()
    second = unverified_claims(refreshed["access_token"])
    # The refresh chain keeps the code's name, the session and the epoch.
    assert (second["chain"], second["sid"], second["epoch"]) == (
        first["chain"], first["sid"], first["epoch"])
    assert second["jti"] != first["jti"]


async def test_a_revocation_does_not_catch_a_token_issued_after_it_in_the_same_second(
        client: httpx.AsyncClient, shop: App, api: App, clock: FakeClock) -> None:
    """The clock stands still here: only the grant's epoch orders revocation and issue."""
    old = await issue(client, shop)
    assert (await client.post("/revoke", data={"token": old["refresh_token"]},
                              headers=shop.basic())).status_code == 200
    assert not await active(client, api, old["access_token"])
    assert await userinfo_status(client, old["access_token"]) == 401
    new = await issue(client, shop)
    assert unverified_claims(new["access_token"])["epoch"] == 1
    assert unverified_claims(new["access_token"])["iat"] == int(clock())
    assert await active(client, api, new["access_token"])
    assert await userinfo_status(client, new["access_token"]) == 200
    # And the old one stays dead.
    assert not await active(client, api, old["access_token"])


async def test_reusing_a_refresh_token_ends_every_access_token_of_the_grant(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    rotated = (await refresh(client, shop, tokens["refresh_token"])).json()
    assert await active(client, api, rotated["access_token"])
    reused = await refresh(client, shop, tokens["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    for token in (tokens["access_token"], rotated["access_token"]):
        assert not await active(client, api, token)
        assert await userinfo_status(client, token) == 401


async def test_a_replayed_code_ends_its_own_descendants_and_nothing_else(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    flow = Flow(shop)
    code = await get_code(client, flow, scope="openid profile offline_access")
    first = (await redeem(client, flow, code)).json()
    refreshed = (await refresh(client, shop, first["refresh_token"])).json()
    other = await issue(client, shop)  # a second code of the same grant and session
    replay = await redeem(client, flow, code)
    assert replay.json()["error"] == "invalid_grant"
    assert not await active(client, api, first["access_token"])
    assert not await active(client, api, refreshed["access_token"])
    assert (await refresh(client, shop, refreshed["refresh_token"])).json()["error"] == (
        "invalid_grant")
    assert await active(client, api, other["access_token"])
    assert await userinfo_status(client, other["access_token"]) == 200


async def test_revoking_one_access_token_leaves_its_siblings(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await issue(client, shop)
    sibling = (await refresh(client, shop, tokens["refresh_token"])).json()
    for _ in range(2):  # revoking twice is revoking once
        response = await client.post("/revoke", data={"token": tokens["access_token"]},
                                     headers=shop.basic())
        assert response.status_code == 200
    assert not await active(client, api, tokens["access_token"])
    assert await active(client, api, sibling["access_token"])


async def test_signing_out_everywhere_ends_the_accounts_tokens_not_its_next_ones(
        client: httpx.AsyncClient, ctx: Context, shop: App, api: App) -> None:
    old = await issue(client, shop)
    user_id = unverified_claims(old["access_token"])["sub"]
    async with ctx.db.transaction() as session:
        await end_sessions_of_user(ctx, session, user_id, revoke="all")
    assert not await active(client, api, old["access_token"])
    assert (await refresh(client, shop, old["refresh_token"])).json()["error"] == "invalid_grant"
    new = await issue(client, shop)
    assert await active(client, api, new["access_token"])


async def test_a_clients_own_token_is_revocable_and_dies_with_its_client(
        client: httpx.AsyncClient, ctx: Context, shop: App, api: App) -> None:
    first = (await client.post("/token", data=CC, headers=api.basic())).json()["access_token"]
    second = (await client.post("/token", data=CC, headers=api.basic())).json()["access_token"]
    claims = unverified_claims(first)
    assert claims["sub"] == api.client_id
    assert not {"sid", "epoch", "chain", "consent"} & claims.keys()
    assert await active(client, shop, first)
    # UserInfo serves end-users only.
    assert await userinfo_status(client, first) == 401
    await client.post("/revoke", data={"token": first}, headers=api.basic())
    assert not await active(client, shop, first)
    assert await active(client, shop, second)
    async with ctx.db.transaction() as session:
        await session.execute(delete(Client).where(Client.client_id == api.client_id))
    assert not await active(client, shop, second)


async def test_a_token_without_an_epoch_is_refused(
        client: httpx.AsyncClient, ctx: Context, shop: App, api: App) -> None:
    """What a token from before access tokens lost their rows looks like: signed by us, with
    a grant, but no epoch. It stops working at the upgrade."""
    tokens = await issue(client, shop)
    claims = unverified_claims(tokens["access_token"])
    del claims["epoch"]
    ring = await ctx.keys.ring()
    legacy = ring.sign(claims, alg=ctx.settings.access_token_signing_alg, typ="at+jwt")
    assert not await active(client, api, legacy)
    assert await userinfo_status(client, legacy) == 401


async def test_a_token_for_another_grant_of_another_client_is_refused(
        client: httpx.AsyncClient, ctx: Context, shop: App, api: App) -> None:
    """Signed claims that point at a grant the client was never given (only a key holder
    could make them; the state check does not trust the grant reference alone)."""
    other = await make_app(ctx, name="Other", grant_types=GRANTS, scopes=SCOPES)
    theirs = unverified_claims((await issue(client, other))["access_token"])
    mine = unverified_claims((await issue(client, shop))["access_token"])
    mixed = {**mine, "consent": theirs["consent"], "epoch": theirs["epoch"]}
    ring = await ctx.keys.ring()
    forged = ring.sign(mixed, alg=ctx.settings.access_token_signing_alg, typ="at+jwt")
    assert not await active(client, api, forged)
    assert await userinfo_status(client, forged) == 401


async def test_revocations_are_purged_once_no_token_they_name_can_live(
        client: httpx.AsyncClient, ctx: Context, shop: App, api: App,
        clock: FakeClock) -> None:
    tokens = await issue(client, shop)
    await client.post("/revoke", data={"token": tokens["access_token"]}, headers=shop.basic())

    async def entries() -> int:
        async with ctx.db.transaction(read_only=True) as session:
            return int(await session.scalar(select(func.count()).select_from(TokenRevocation))
                       or 0)

    assert await entries() == 1
    clock.advance(REVOCATION_KEPT_SECONDS - 1)
    await maintenance.run_once(ctx)
    assert await entries() == 1
    clock.advance(1)
    await maintenance.run_once(ctx)
    assert await entries() == 0
    # Expired long before the entry went: still inactive.
    assert not await active(client, api, tokens["access_token"])


def test_the_token_paths_never_read_a_password_hash() -> None:
    """UserInfo, introspection, refresh and code redemption read the account with its grant;
    none of those statements selects the password hash, so it never travels on them."""
    reads = [tokens.__dict__[name] for name in (
        "_USER_TOKEN_STATE", "_GRANT_STATE", "_REFRESH_TOKEN_STATE",
        "_LOCK_GRANT_OF_REFRESH_TOKEN")]
    for read in reads:
        columns = {column.name for column in read.statement.selected_columns}
        assert "u_id" in columns and "u_email" in columns and "u_profile" in columns
        assert not any("password" in name for name in columns), columns
