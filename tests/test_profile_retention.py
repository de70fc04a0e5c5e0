"""Retention (issue 16 item 6) through the maintenance job: a value collected only for purposes
that were withdrawn, or whose retention period ran out, is purged, and the consent ledger
records the purge with attribute names, never values. What another live grant still covers,
and what the customer typed in the account center, stays."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from idp.services import maintenance
from idp.services.consent import grants
from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import App, account_sign_in, csrf_token, make_user
from tests.profile_helpers import bearer, connect, define_world, operator_headers, shop

ME = "/profile/v1/me"
WANTS = {"userinfo": {"shoe_size": None}}
DAY = 86_400


@pytest.fixture
async def alice(ctx: Context) -> str:
    await define_world(ctx)
    return await make_user(ctx, given_name="Alice")


async def profile(client: httpx.AsyncClient) -> dict[str, Any]:
    """The account's values, as the export gives them (after a fresh sign-in: the export
    asks for a recent one)."""
    await account_sign_in(client)
    page = await client.get("/account/export")
    document = (await client.post("/account/export", data={
        "csrf_token": csrf_token(page.text)})).json()
    result: dict[str, Any] = document["account"]["profile"]
    return {**{name: entry["value"] for name, entry in result.items()},
            "_ledger": document["consent_history"]}


async def write(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> None:
    response = await client.patch(ME, content=json.dumps(body), headers={
        **bearer(token), "Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text


def leaves(value: Any) -> list[Any]:
    """Every value in a JSON document, however deep."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


async def test_withdrawn_purposes_take_their_values(
        client: httpx.AsyncClient, ctx: Context, alice: str, clock: FakeClock) -> None:
    shop_app = await shop(ctx)
    tokens = await connect(client, shop_app, ["loyalty", "personalisation"],
                           scope="openid fit", claims=WANTS, profile={"shoe_size": "42"})
    await write(client, tokens["access_token"], {"loyalty_tier": "gold"})
    # Typed by the customer in the account center: theirs, bound to no purpose.
    page = await client.get("/account/profile")
    assert (await client.post("/account/profile", data={
        "csrf_token": csrf_token(page.text), "favourite_colour": "red"})).status_code == 303

    await maintenance.run_once(ctx)
    kept = await profile(client)
    assert (kept["shoe_size"], kept["loyalty_tier"]) == (42, "gold")  # the grant stands

    await grants.withdraw(ctx, alice, shop_app.client_id)
    clock.advance(1)
    await maintenance.run_once(ctx)
    after = await profile(client)
    assert "shoe_size" not in after and "loyalty_tier" not in after
    assert (after["given_name"], after["favourite_colour"]) == ("Alice", "red")
    [purge] = [entry for entry in after["_ledger"] if entry["action"] == "purge"]
    assert purge["client_id"] == shop_app.client_id
    assert purge["payload"]["attributes"] == ["loyalty_tier", "shoe_size"]
    assert purge["payload"]["purposes"] == ["loyalty", "personalisation"]
    # The erased values are nowhere in the entry (its random ids may hold "42" by chance).
    assert not {"gold", "42", 42} & set(leaves(purge))
    # The account center's history says what went.
    history = (await client.get("/account/privacy")).text
    assert 'data-action="purge"' in history and "loyalty_tier, shoe_size" in history
    # A second run finds nothing more to do.
    await maintenance.run_once(ctx)
    assert [e["action"] for e in (await profile(client))["_ledger"]].count("purge") == 1


async def test_another_apps_grant_keeps_a_value_until_it_goes_too(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    first: App = await shop(ctx, "Shop", "https://app.example/shop")
    second: App = await shop(ctx, "Boutique", "https://app.example/boutique")
    await connect(client, first, ["personalisation"], scope="openid fit", claims=WANTS,
                  profile={"shoe_size": "42"})
    await connect(client, second, ["personalisation"], scope="openid fit")
    await grants.withdraw(ctx, alice, first.client_id)
    await maintenance.run_once(ctx)
    assert (await profile(client))["shoe_size"] == 42  # Boutique's grant covers it
    await grants.change_purpose_everywhere(ctx, alice, "personalisation", allowed=False)
    await maintenance.run_once(ctx)
    assert "shoe_size" not in await profile(client)


async def test_a_retention_period_ends_a_value_under_a_live_grant(
        client: httpx.AsyncClient, ctx: Context, alice: str, clock: FakeClock) -> None:
    ops = await operator_headers(client, ctx)
    changed = await client.patch("/admin/v1/purposes/loyalty", headers=ops, json={
        "retention_days": 30, "material": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["retention_days"] == 30
    assert (await client.patch("/admin/v1/purposes/loyalty", headers=ops, json={
        "retention_days": 0})).status_code == 400

    shop_app = await shop(ctx)
    tokens = await connect(client, shop_app, ["loyalty"], scope="openid")
    await write(client, tokens["access_token"], {"loyalty_tier": "gold"})
    clock.advance(29 * DAY)
    await maintenance.run_once(ctx)
    assert (await profile(client))["loyalty_tier"] == "gold"
    clock.advance(2 * DAY)
    await maintenance.run_once(ctx)
    after = await profile(client)
    assert "loyalty_tier" not in after
    [purge] = [entry for entry in after["_ledger"] if entry["action"] == "purge"]
    assert purge["payload"]["attributes"] == ["loyalty_tier"]
