"""Changing the account's address (issue 12 item 4): after a recent sign-in, confirmed from the
new address with a button behind the link, a notice with a one-click undo to the old one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import SecurityEvent, User
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    csrf_token,
    get_code,
    make_app,
    make_user,
    redeem,
)
from tests.mailbox import Inbox, deliver, link_in, token_of, with_relay

NEW = "alice@new.example"


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


async def ask(browser: httpx.AsyncClient, address: str) -> httpx.Response:
    page = await browser.get("/account/email")
    assert page.status_code == 200, page.text
    return await browser.post("/account/email", data={
        "csrf_token": csrf_token(page.text), "email": address})


async def press(browser: httpx.AsyncClient, link: str) -> httpx.Response:
    """Open the mailed link's page and press its button."""
    page = await browser.get(link.removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    path = link.removeprefix(ISSUER).partition("?")[0]
    return await browser.post(path, data={"csrf_token": csrf_token(page.text),
                                          "token": token_of(link)})


async def address_of(ctx: Context, user_id: str) -> tuple[str | None, bool]:
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user.email, user.email_verified


async def test_the_address_changes_when_the_new_one_confirms(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    await account_sign_in(client)
    assert 'href="/account/email"' in (await client.get("/account/security")).text
    sent = await ask(client, " Alice@New.Example ")
    assert sent.status_code == 200 and NEW in sent.text
    assert await address_of(ctx, user_id) == ("alice@example.com", True)  # not yet
    await deliver(ctx)
    (confirm,) = received.to(NEW)
    link = link_in(confirm)
    assert link.startswith(f"{ISSUER}/account/email/confirm?token=")
    # Following the link shows a button; it changes nothing by itself (mail scanners).
    scanner = await new_browser().get(link.removeprefix(ISSUER))
    assert scanner.status_code == 200 and NEW in scanner.text
    assert await address_of(ctx, user_id) == ("alice@example.com", True)
    done = await press(new_browser(), link)
    assert done.status_code == 200 and "Address changed" in done.text
    assert await address_of(ctx, user_id) == (NEW, True)
    await account_sign_in(new_browser(), email=NEW)
    # The old address was told, with a way back.
    await deliver(ctx)
    (notice,) = received.to("alice@example.com")
    assert notice["Subject"] == "Your account's address was changed"
    plain = notice.get_body(preferencelist=("plain",))
    assert plain is not None and NEW in plain.get_content()  # the old inbox learns where
    assert link_in(notice).startswith(f"{ISSUER}/account/email/undo?token=")
    # The confirmation link worked once.
    again = await new_browser().get(link.removeprefix(ISSUER))
    assert again.status_code == 400 and "no longer works" in again.text
    async with ctx.db.transaction() as session:
        kinds = {e.kind for e in await session.scalars(
            select(SecurityEvent).where(SecurityEvent.user_id == user_id))}
    assert {"email_change_requested", "email_changed"} <= kinds


async def test_undo_restores_the_old_address_and_signs_everyone_out(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    shop = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "email", "offline_access"])
    intruder = new_browser()
    await account_sign_in(intruder)
    flow = Flow(shop)
    tokens = (await redeem(intruder, flow, await get_code(
        intruder, flow, scope="openid email offline_access"))).json()
    await ask(intruder, NEW)
    await deliver(ctx)
    await press(new_browser(), link_in(received.to(NEW)[0]))
    await deliver(ctx)
    undo_link = link_in(received.to("alice@example.com")[0])
    undone = await press(new_browser(), undo_link)
    assert undone.status_code == 200 and "Address restored" in undone.text
    assert 'href="/account/forgot"' in undone.text
    assert await address_of(ctx, user_id) == ("alice@example.com", True)
    # Whoever changed it is out: the session, the refresh token, the access token.
    assert (await intruder.get("/account")).status_code in (303, 307)
    refused = await client.post("/token", headers=shop.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refused.json()["error"] == "invalid_grant"
    assert (await client.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).status_code == 401
    # Once only.
    assert (await new_browser().get(undo_link.removeprefix(ISSUER))).status_code == 400


async def test_an_address_another_account_has_is_answered_alike(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    await make_user(ctx, email="bob@example.com")
    await account_sign_in(client)
    taken = await ask(client, "bob@example.com")
    free = await ask(client, "carol@example.com")
    assert taken.status_code == free.status_code == 200
    assert taken.text.replace("bob@example.com", "X").split("csrf")[0] == \
        free.text.replace("carol@example.com", "X").split("csrf")[0]
    await deliver(ctx)
    (in_use,) = received.to("bob@example.com")
    assert in_use["Subject"] == "This address already has an account"
    assert link_in(in_use) == f"{ISSUER}/account/forgot"
    assert "/account/email/confirm" in link_in(received.to("carol@example.com")[0])
    assert await address_of(ctx, user_id) == ("alice@example.com", True)


async def test_a_change_needs_a_recent_sign_in(client: httpx.AsyncClient, ctx: Context,
                                               clock: FakeClock) -> None:
    await make_user(ctx)
    assert (await client.get("/account/email")).headers["location"] == "/account/login"
    await account_sign_in(client)
    page = await client.get("/account/email")
    assert page.status_code == 200
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    assert (await client.get("/account/email")).headers["location"] == \
        "/account/reauth?next=/account/email"
    late = await client.post("/account/email", data={
        "csrf_token": csrf_token(page.text), "email": NEW})
    assert late.status_code == 303
    assert late.headers["location"] == "/account/reauth?next=/account/email"


@pytest.mark.parametrize(("address", "message"), [
    ("alice@example.com", "already your address"),
    ("not an address", "valid email"),
    ("x@" + "y" * 300 + ".example", "valid email"),
])
async def test_a_refused_address_says_why(client: httpx.AsyncClient, ctx: Context,
                                          address: str, message: str) -> None:
    await make_user(ctx)
    await account_sign_in(client)
    refused = await ask(client, address)
    assert refused.status_code == 400 and message in refused.text


async def test_links_expire_and_forged_ones_do_nothing(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock,
        new_browser: Any) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    await account_sign_in(client)
    await ask(client, NEW)
    await deliver(ctx)
    link = link_in(received.to(NEW)[0])
    for forged in ("", "forged", "x" * 200):
        page = await new_browser().get("/account/email/confirm", params={"token": forged})
        assert page.status_code == 400
    browser = new_browser()
    page = await browser.get(link.removeprefix(ISSUER))
    clock.advance(24 * 3600)
    late = await browser.post("/account/email/confirm", data={
        "csrf_token": csrf_token(page.text), "token": token_of(link)})
    assert late.status_code == 400 and "no longer works" in late.text
    assert await address_of(ctx, user_id) == ("alice@example.com", True)


async def test_the_address_taken_meanwhile_is_not_taken_over(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    await account_sign_in(client)
    await ask(client, NEW)
    await deliver(ctx)
    await admin.create_user(ctx, email=NEW, password=PASSWORD)
    refused = await press(new_browser(), link_in(received.to(NEW)[0]))
    assert refused.status_code == 409 and "Another account" in refused.text
    assert await address_of(ctx, user_id) == ("alice@example.com", True)


async def test_requests_are_throttled(client: httpx.AsyncClient, ctx: Context) -> None:
    await make_user(ctx)
    await account_sign_in(client)
    statuses = [(await ask(client, f"n{i}@new.example")).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
