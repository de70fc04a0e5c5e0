"""Registration with a verified address (issue 12 item 2): the register page asks for the
address only and answers the same whatever it is; the mail either continues the registration
or, for an address with an account, says so and offers sign-in and reset. The authorization
request survives the round trip, and `email_verified` tells the truth."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from idp.services.context import Context
from idp.services.signin import throttle
from idp.settings import Settings
from idp.store.models import SecurityEvent, User
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    PASSWORD,
    Flow,
    approve,
    assert_known_and_unknown_alike,
    authorize,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
    unverified_claims,
)
from tests.mailbox import Inbox, deliver, link_in, token_of, with_relay

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


async def register_page(browser: httpx.AsyncClient, flow: Flow) -> httpx.Response:
    login_page = await authorize(browser, flow)
    assert urlsplit(str(login_page.url)).path.endswith("/login")
    page = await browser.get(urlsplit(str(login_page.url)).path.replace("/login", "/register"))
    assert page.status_code == 200
    return page


async def ask(browser: httpx.AsyncClient, page: httpx.Response, address: str) -> httpx.Response:
    return await browser.post(urlsplit(str(page.url)).path, data={
        "csrf_token": csrf_token(page.text), "email": address})


async def mailed_link(ctx: Context, received: Inbox) -> tuple[Any, str]:
    assert await deliver(ctx) == 2  # the request carried out, then its mail
    message = received.messages[-1]
    return message, link_in(message)


async def test_a_new_customer_registers_through_the_mailed_link_and_lands_in_the_app(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    shop = Flow(await make_app(ctx, name="Shop"))
    browser = new_browser()
    page = await register_page(browser, shop)
    assert 'name="password"' not in page.text  # the address first, nothing else
    answer = await ask(browser, page, " New.User@Example.com ")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert received.messages == []  # never inline in the request: the outbox sends it
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0
    message, link = await mailed_link(ctx, received)
    assert message["To"] == "new.user@example.com"
    assert message["Subject"].startswith("Finish creating your ")
    assert link.startswith(f"{ISSUER}/signup?token=")
    assert "Shop" in message.get_body(preferencelist=("plain",)).get_content()

    # The link opened in another browser (the mail app's): the request goes on there.
    phone = new_browser()
    form = await phone.get(link.removeprefix(ISSUER))
    assert form.status_code == 200 and "new.user@example.com" in form.text
    created = await phone.post("/signup", data={
        "csrf_token": csrf_token(form.text), "token": token_of(link),
        "password": NEW_PASSWORD})
    consent = await follow_to_page(phone, created)
    assert urlsplit(str(consent.url)).path.endswith("/consent")
    back = await approve(phone, consent)
    assert back.status_code == 303
    query = query_of(back.headers["location"])
    assert back.headers["location"].startswith(shop.app.redirect_uri)
    assert query["state"] == shop.state
    tokens = (await redeem(phone, shop, query["code"])).json()
    assert unverified_claims(tokens["id_token"])["nonce"] == shop.nonce
    info = (await phone.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert (info["email"], info["email_verified"]) == ("new.user@example.com", True)
    # Once only.
    again = await phone.get(link.removeprefix(ISSUER))
    assert again.status_code == 400 and "This link no longer works" in again.text


async def test_a_taken_address_gets_the_same_page_and_a_mail_offering_sign_in(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    shop = Flow(await make_app(ctx, name="Shop"))
    browser = new_browser()
    taken = await ask(browser, await register_page(browser, shop), "alice@example.com")
    fresh_browser = new_browser()
    fresh = await ask(fresh_browser, await register_page(fresh_browser, Flow(shop.app)),
                      "bob@example.com")
    assert taken.status_code == fresh.status_code == 200
    ids = [urlsplit(str(r.url)).path.split("/")[2] for r in (taken, fresh)]
    # The same page, but for the interaction's id in its links.
    assert taken.text.replace(ids[0], "ID") == fresh.text.replace(ids[1], "ID")
    assert await deliver(ctx) == 4
    by_address = {m["To"]: m for m in received.messages}
    existing = by_address["alice@example.com"]
    assert existing["Subject"].startswith("You already have")
    text = existing.get_body(preferencelist=("plain",)).get_content()
    assert f"{ISSUER}/account/forgot" in text
    # Its sign-in link takes up the app's request, at the login page with the address.
    link = link_in(existing)
    phone = new_browser()
    page = await follow_to_page(phone, await phone.get(link.removeprefix(ISSUER)))
    assert urlsplit(str(page.url)).path.endswith("/login")
    assert 'value="alice@example.com"' in page.text
    back = await approve(phone, await login(phone, page))
    assert query_of(back.headers["location"])["state"] == shop.state
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1
        kinds = [e.kind for e in await session.scalars(select(SecurityEvent))]
    assert "registration_attempted" in kinds


async def test_nobody_can_register_an_address_they_cannot_read(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    """Account pre-hijacking: an attacker asking for the victim's address gets nothing to
    use; the account exists only once someone follows the link from the mailbox."""
    received, _ = inbox
    shop = Flow(await make_app(ctx))
    attacker = new_browser()
    await ask(attacker, await register_page(attacker, shop), "victim@example.com")
    await ask(attacker, await register_page(attacker, Flow(shop.app)), "mallory@example.com")
    assert await deliver(ctx) == 4
    own = next(m for m in received.messages if m["To"] == "mallory@example.com")
    form = await attacker.get(link_in(own).removeprefix(ISSUER))  # a real form, own CSRF token
    real = token_of(link_in(own))
    near = real[:-1] + ("B" if real.endswith("A") else "A")  # one character off
    for guess in ("", "x" * 129, "not-a-token", near):
        page = await attacker.get("/signup", params={"token": guess})
        assert page.status_code == 400 and "This link no longer works" in page.text
        posted = await attacker.post("/signup", data={
            "csrf_token": csrf_token(form.text), "token": guess, "password": NEW_PASSWORD})
        assert posted.status_code == 400 and "This link no longer works" in posted.text
    # Another form's CSRF token is refused outright.
    other = await attacker.get("/account/forgot")
    assert (await attacker.post("/signup", data={
        "csrf_token": csrf_token(other.text), "token": token_of(link_in(own)),
        "password": NEW_PASSWORD})).status_code == 403
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_the_password_rules_apply_and_the_link_survives_a_refused_password(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    shop = Flow(await make_app(ctx))
    browser = new_browser()
    await ask(browser, await register_page(browser, shop), "carol@example.com")
    _, link = await mailed_link(ctx, received)
    form = await browser.get(link.removeprefix(ISSUER))
    for bad in ("short", "password123", "carol@example.com1"):
        refused = await browser.post("/signup", data={
            "csrf_token": csrf_token(form.text), "token": token_of(link), "password": bad})
        assert refused.status_code == 400 and 'role="alert"' in refused.text
    created = await browser.post("/signup", data={
        "csrf_token": csrf_token(form.text), "token": token_of(link), "password": NEW_PASSWORD})
    assert created.status_code == 303


async def test_password_problems_are_shown_on_the_link_page_in_words(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    browser = new_browser()
    await ask(browser, await register_page(browser, Flow(await make_app(ctx))),
              "grace@example.com")
    _, link = await mailed_link(ctx, received)
    form = await browser.get(link.removeprefix(ISSUER))
    for password, message in (
            ("seven77", "Choose a password of at least 8 characters."),
            ("", "Choose a password of at least 8 characters."),
            ("x" * 257, "Choose a password of at most 256 characters.")):
        refused = await browser.post("/signup", data={
            "csrf_token": csrf_token(form.text), "token": token_of(link), "password": password})
        assert refused.status_code == 400
        assert re.search(r'role="alert"[^>]*>([^<]+)<', refused.text).group(1) == message
        assert "set-cookie" not in refused.headers or "idp_session" not in refused.headers[
            "set-cookie"]
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_an_expired_link_changes_nothing(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any, clock: FakeClock) -> None:
    received, _ = inbox
    shop = Flow(await make_app(ctx))
    browser = new_browser()
    await ask(browser, await register_page(browser, shop), "dave@example.com")
    _, link = await mailed_link(ctx, received)
    form = await browser.get(link.removeprefix(ISSUER))
    clock.advance(3601)
    expired = await browser.post("/signup", data={
        "csrf_token": csrf_token(form.text), "token": token_of(link), "password": NEW_PASSWORD})
    assert expired.status_code == 400 and "This link no longer works" in expired.text
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_two_uses_of_one_link_at_once_make_one_account(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    received, _ = inbox
    shop = Flow(await make_app(ctx))
    browser = new_browser()
    await ask(browser, await register_page(browser, shop), "erin@example.com")
    _, link = await mailed_link(ctx, received)
    browsers = [new_browser() for _ in range(4)]
    forms = [await b.get(link.removeprefix(ISSUER)) for b in browsers]
    answers = await asyncio.gather(*(b.post("/signup", data={
        "csrf_token": csrf_token(f.text), "token": token_of(link), "password": NEW_PASSWORD})
        for b, f in zip(browsers, forms, strict=True)))
    assert sorted(a.status_code for a in answers) == [303, 400, 400, 400]
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_a_bad_address_is_refused_on_the_page_and_requests_are_limited(
        ctx: Context, inbox: tuple[Inbox, int], new_browser: Any) -> None:
    shop = Flow(await make_app(ctx))
    browser = new_browser()
    page = await register_page(browser, shop)
    for bad in ("not an address", "a@b", "x" * 300 + "@example.com", "nul\x00@example.com"):
        refused = await ask(browser, page, bad)
        assert refused.status_code == 200 and "Enter a valid email address." in refused.text
    # Three a address an hour, like reset links: then 429 with Retry-After.
    statuses = [(await ask(browser, page, "frank@example.com")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_known_and_unknown_addresses_get_the_same_answer_in_the_same_time(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: byte-identical answers in the same time: the request does the same work for
    both (the account is looked up by the outbox)."""
    monkeypatch.setattr(throttle, "RESETS_PER_NETWORK", 1000)
    for i in range(50):
        await make_user(ctx, email=f"known{i}@example.com")
    page = await register_page(client, Flow(await make_app(ctx)))
    path, token = urlsplit(str(page.url)).path, csrf_token(page.text)
    await assert_known_and_unknown_alike(lambda email: client.post(
        path, data={"csrf_token": token, "email": email}))


async def test_a_password_is_still_what_signs_an_existing_customer_in(
        ctx: Context, new_browser: Any) -> None:
    """The register page no longer takes a password: a post with one makes no account and
    signs nobody in."""
    await make_user(ctx)
    shop = Flow(await make_app(ctx))
    browser = new_browser()
    page = await register_page(browser, shop)
    answer = await browser.post(urlsplit(str(page.url)).path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert "set-cookie" not in answer.headers or "idp_session" not in answer.headers[
        "set-cookie"]
