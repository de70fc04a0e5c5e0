"""The customer's side of the profile (issue 16 items 1 and 4): /account/profile shows each
value with where it came from and when and lets the customer correct or remove what is
editable; /account/data-access and the export show what each app received and when, for a
customer who used two apps; erasure takes values, provenance and the access log."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from idp.services.accounts import erasure
from idp.services.context import Context
from idp.store.models import ProfileProvenance, ProfileRelease
from tests.conftest import FakeClock
from tests.fakes.google import FakeGoogle
from tests.flows import sign_in_with_google
from tests.helpers import App, csrf_token, make_app, make_user, redeem
from tests.profile_helpers import bearer, connect, define_world, shop

ME = "/profile/v1/me"
WANTS = {"userinfo": {"shoe_size": None}}


@pytest.fixture
async def alice(ctx: Context) -> str:
    await define_world(ctx)
    return await make_user(ctx, given_name="Alice")


def item(html: str, name: str) -> str:
    """The page's entry for one attribute."""
    match = re.search(rf'<(li|div) data-attribute="{name}"[^>]*>.*?</\1>', html, re.S)
    assert match, f"no entry for {name}"
    return match.group(0)


async def two_apps_used(client: httpx.AsyncClient, ctx: Context) -> tuple[App, App, str]:
    """Shop: the customer types their shoe size on its consent page, it writes the loyalty
    tier and reads the profile; Boutique reads UserInfo and gets an ID token with a claim."""
    shop_app = await shop(ctx, "Shop", "https://app.example/shop")
    boutique = await shop(ctx, "Boutique", "https://app.example/boutique")
    tokens = await connect(client, shop_app, ["loyalty", "personalisation"],
                           scope="openid profile fit", claims=WANTS,
                           profile={"shoe_size": "42", "favourite_colour": ""})
    written = await client.patch(ME, content=b'{"loyalty_tier": "gold"}', headers={
        **bearer(tokens["access_token"]), "Content-Type": "application/merge-patch+json"})
    assert written.status_code == 200, written.text
    other = await connect(client, boutique, ["personalisation"], scope="openid fit",
                          claims={"id_token": {"shoe_size": None}})
    info = await client.get("/userinfo", headers=bearer(other["access_token"]))
    assert info.json()["shoe_size"] == 42
    return shop_app, boutique, tokens["access_token"]


async def test_each_value_shows_where_it_came_from(
        client: httpx.AsyncClient, ctx: Context, alice: str, clock: FakeClock) -> None:
    await two_apps_used(client, ctx)
    page = await client.get("/account/profile")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert 'data-source="operator"' in item(html, "given_name")
    assert "Set by our support team" in item(html, "given_name")
    shoe = item(html, "shoe_size")
    assert 'data-source="customer"' in shoe and "You entered this for Shop" in shoe
    assert 'value="42"' in shoe  # editable: in the form
    tier = item(html, "loyalty_tier")
    assert 'data-source="app"' in tier and "Set by Shop" in tier and "<dd dir=\"auto\">gold" \
        in tier
    assert 'name="loyalty_tier"' not in html  # not the customer's to edit
    # Editable but empty: offered, with nothing to remove.
    assert 'form="remove-favourite_colour"' not in html
    assert '<a href="/account/data-access">' in html


async def test_correcting_and_removing(client: httpx.AsyncClient, ctx: Context, alice: str,
                                       clock: FakeClock) -> None:
    await two_apps_used(client, ctx)
    page = await client.get("/account/profile")
    token = csrf_token(page.text)
    # Without the form's token: refused as a possible forgery.
    assert (await client.post("/account/profile", data={"shoe_size": "40"})).status_code == 403
    refused = await client.post("/account/profile", data={
        "csrf_token": token, "given_name": "Alicia", "shoe_size": "forty"})
    assert refused.status_code == 400
    assert 'role="alert" id="profile-problems"' in refused.text
    assert '<p class="error" id="profile-shoe_size-error">Shoe size must be a whole ' \
           'number</p>' in refused.text
    assert 'value="forty"' in refused.text and 'aria-invalid="true"' in refused.text
    assert "Set by our support team" in item((await client.get("/account/profile")).text,
                                             "given_name")  # nothing was saved
    clock.advance(30)
    saved = await client.post("/account/profile", data={
        "csrf_token": token, "given_name": "Alicia", "shoe_size": "43",
        "favourite_colour": "red", "loyalty_tier": "bronze"})
    assert saved.status_code == 303 and saved.headers["location"] == \
        "/account/profile?status=saved"
    html = (await client.get("/account/profile?status=saved")).text
    assert 'role="status"' in html
    for name, value in (("given_name", "Alicia"), ("shoe_size", "43")):
        entry = item(html, name)
        assert f'value="{value}"' in entry and 'data-source="customer"' in entry
        assert "You entered this," in entry
    assert "gold" in item(html, "loyalty_tier")  # not editable: the form cannot change it
    removed = await client.post("/account/profile/remove", data={
        "csrf_token": token, "name": "shoe_size"})
    assert removed.status_code == 303
    assert 'value=""' in item((await client.get("/account/profile")).text, "shoe_size")
    not_mine = await client.post("/account/profile/remove", data={
        "csrf_token": token, "name": "loyalty_tier"})
    assert not_mine.status_code == 400
    assert "gold" in item((await client.get("/account/profile")).text, "loyalty_tier")


async def test_signed_out_pages_send_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/account/profile", "/account/data-access"):
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"] == \
            "/account/login"


async def test_what_each_app_received_and_when(client: httpx.AsyncClient, ctx: Context,
                                               alice: str, clock: FakeClock) -> None:
    shop_app, boutique, _ = await two_apps_used(client, ctx)
    html = (await client.get("/account/data-access")).text
    rows = dict(re.findall(r'<tr data-client="([^"]+)".*?data-attributes="([^"]*)"', html,
                           re.S))
    assert set(rows) == {shop_app.client_id, boutique.client_id}
    # Shop read the profile (its write answered with what it may read); Boutique got an ID
    # token with the claim it named, and UserInfo.
    assert rows[shop_app.client_id].split() == ["given_name", "loyalty_tier", "shoe_size"]
    assert rows[boutique.client_id].split() == ["shoe_size"]
    boutique_row = re.search(rf'<tr data-client="{boutique.client_id}".*?</tr>', html, re.S)
    assert boutique_row and "Boutique" in boutique_row.group(0)
    assert "when you signed in, the app asked for your details" in boutique_row.group(0)
    assert "<td data-attributes=\"shoe_size\">Shoe size</td>" in boutique_row.group(0)

    # The export: the same log, and each value's provenance.
    page = await client.get("/account/export")
    document = (await client.post("/account/export", data={
        "csrf_token": csrf_token(page.text)})).json()
    day = document["exported_at"][:10]
    access = {(a["app"], a["day"]): (a["attributes"], a["via"])
              for a in document["profile_access"]}
    assert access == {
        ("Shop", day): (["given_name", "loyalty_tier", "shoe_size"], ["profile_api"]),
        ("Boutique", day): (["shoe_size"], ["id_token", "userinfo"])}
    profile = document["account"]["profile"]
    assert profile["loyalty_tier"]["value"] == "gold"
    assert profile["loyalty_tier"]["provenance"] == {
        "source": "app", "by": shop_app.client_id, "app": "Shop",
        "set_at": document["exported_at"], "collected_for_purposes": ["loyalty"]}
    assert profile["shoe_size"]["provenance"]["source"] == "customer"
    assert profile["shoe_size"]["provenance"]["collected_for_purposes"] == ["personalisation"]
    assert profile["given_name"]["provenance"]["source"] == "operator"


async def test_the_log_writes_once_a_day_per_app(
        client: httpx.AsyncClient, ctx: Context, alice: str, clock: FakeClock) -> None:
    app = await shop(ctx)
    tokens = await connect(client, app, ["loyalty"], scope="openid profile")
    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PROFILE_RELEASES"):
            inserts.append(statement)

    event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            assert (await client.get("/userinfo", headers=bearer(tokens["access_token"]))
                    ).status_code == 200
        assert len(inserts) == 1  # the first release of the day; the rest cost no write
        clock.advance(86_400)
        tomorrow = await connect(client, app, ["loyalty"], scope="openid profile")
        assert (await client.get("/userinfo", headers=bearer(tomorrow["access_token"]))
                ).status_code == 200
        assert len(inserts) == 2
    finally:
        event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", count)
    async with ctx.db.transaction() as session:
        days = list(await session.scalars(select(ProfileRelease.day).where(
            ProfileRelease.attribute == "given_name").order_by(ProfileRelease.day)))
    assert days == [int(clock.value) // 86_400 - 1, int(clock.value) // 86_400]


async def test_erasure_takes_values_provenance_and_the_log(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    await two_apps_used(client, ctx)

    async def counts() -> tuple[int, int]:
        async with ctx.db.transaction() as session:
            return (int(await session.scalar(select(func.count()).select_from(
                        ProfileProvenance).where(ProfileProvenance.user_id == alice)) or 0),
                    int(await session.scalar(select(func.count()).select_from(
                        ProfileRelease).where(ProfileRelease.user_id == alice)) or 0))

    assert all(n > 0 for n in await counts())
    await erasure.delete_account(ctx, alice, initiator="customer")
    assert await counts() == (0, 0)


async def test_an_upstream_import_keeps_the_provider_as_source(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    app = await make_app(ctx)
    flow, code = await sign_in_with_google(browser, app)
    tokens = (await redeem(browser, flow, code)).json()
    assert "access_token" in tokens
    html = (await browser.get("/account/profile")).text
    entry = item(html, "name")
    assert 'data-source="upstream"' in entry and "Imported from Google" in entry
    page = await browser.get("/account/export")
    document = (await browser.post("/account/export", data={
        "csrf_token": csrf_token(page.text)})).json()
    provenance = document["account"]["profile"]["name"]["provenance"]
    assert (provenance["source"], provenance["by"]) == ("upstream", "google")
    assert provenance["collected_for_purposes"] == []
