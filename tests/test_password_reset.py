"""Mail through the outbox to a real SMTP server (aiosmtpd), and password reset by mailed
link (issue 12 items 1 and 3): the same answer for known and unknown addresses, a one-time
30-minute link built from the issuer, and a reset that signs the customer out everywhere and
never in."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.main import create_app
from idp.services.context import Context, build_context
from idp.services.signin import throttle
from idp.settings import Settings
from idp.store.models import OutboxMessage, SecurityEvent
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    assert_known_and_unknown_alike,
    csrf_token,
    get_code,
    make_app,
    make_user,
    redeem,
)
from tests.mailbox import Inbox, deliver, link_in, token_of, with_relay
from tests.receiver import free_port

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


async def ask_for_link(browser: httpx.AsyncClient, address: str) -> httpx.Response:
    page = await browser.get("/account/forgot")
    assert page.status_code == 200
    return await browser.post("/account/forgot", data={
        "csrf_token": csrf_token(page.text), "email": address})


async def choose(browser: httpx.AsyncClient, link: str, password: str = NEW_PASSWORD
                 ) -> httpx.Response:
    page = await browser.get(link.removeprefix(ISSUER))
    assert page.status_code == 200, page.text
    return await browser.post("/account/reset", data={
        "csrf_token": csrf_token(page.text), "token": token_of(link),
        "new_password": password})


async def test_a_forgotten_password_is_reset_by_mailed_link(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    login_page = await new_browser().get("/account/login")
    assert 'href="/account/forgot"' in login_page.text
    answer = await ask_for_link(client, "Alice@Example.com ")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert received.messages == []  # never inline in the request: the outbox sends it
    assert await deliver(ctx) == 2  # the request carried out, then its mail
    (message,) = received.messages
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Shop accounts <accounts@shop.test>"
    assert message["Subject"] == "Reset your password"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and token_of(link_in(message)) in html.get_content()
    link = link_in(message)
    # Built from the issuer, never from the request's Host.
    assert link.startswith(f"{ISSUER}/account/reset?token=")
    assert len(token_of(link)) >= 43  # 256 bits
    done = await choose(new_browser(), link)
    assert done.status_code == 200 and "Password changed" in done.text
    # A reset never signs in: the new password does.
    browser = new_browser()
    await account_sign_in(browser, password=NEW_PASSWORD)
    old = new_browser()
    page = await old.get("/account/login")
    refused = await old.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert refused.status_code == 200  # the login page again, not the account
    # The address hears that the password was reset (tests/test_change_notice.py).
    assert await deliver(ctx) == 1
    notice = received.messages[-1]
    assert (notice["To"], notice["Subject"]) == (
        "alice@example.com", "A change to how you sign in to idp operator")
    async with ctx.db.transaction() as session:
        kinds = [e.kind for e in await session.scalars(
            select(SecurityEvent).where(SecurityEvent.user_id == user_id))]
        outbox = list(await session.scalars(select(OutboxMessage)))
    assert "password_reset_requested" in kinds and "password_reset" in kinds
    # The delivered message's content is gone from the database.
    assert all("sealed" not in row.payload for row in outbox)


async def test_known_and_unknown_addresses_get_the_same_answer(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    known = await ask_for_link(client, "alice@example.com")
    unknown = await ask_for_link(client, "nobody@example.com")
    malformed = await ask_for_link(client, "not an address")

    def visible(response: httpx.Response) -> str:
        return re.sub(r'value="[^"]*"', "", response.text)

    assert known.status_code == unknown.status_code == malformed.status_code == 200
    assert visible(known) == visible(unknown) == visible(malformed)
    assert await deliver(ctx) == 3  # two requests carried out, one mail
    assert [m["To"] for m in received.messages] == ["alice@example.com"]


async def test_the_link_works_once_and_only_the_newest(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    await ask_for_link(client, "alice@example.com")
    await ask_for_link(client, "alice@example.com")
    await deliver(ctx)
    links = [link_in(m) for m in received.messages]
    pages = [await new_browser().get(link.removeprefix(ISSUER)) for link in links]
    # The first link stopped working when the second was sent.
    assert sorted(p.status_code for p in pages) == [200, 400]
    superseded = next(p for p in pages if p.status_code == 400)
    assert "no longer works" in superseded.text
    newer = links[[p.status_code for p in pages].index(200)]
    assert (await choose(new_browser(), newer)).status_code == 200
    replayed = await new_browser().get(newer.removeprefix(ISSUER))
    assert replayed.status_code == 400 and "no longer works" in replayed.text
    # Posting it again (a replayed form) changes nothing either.
    browser = new_browser()
    page = await browser.get("/account/forgot")
    again = await browser.post("/account/reset", data={
        "csrf_token": csrf_token(page.text), "token": token_of(newer),
        "new_password": "yet another passphrase"})
    assert again.status_code == 403  # the form's CSRF token is for another form
    await account_sign_in(new_browser(), password=NEW_PASSWORD)


async def test_the_link_expires_after_30_minutes(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock,
        new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    await ask_for_link(client, "alice@example.com")
    await deliver(ctx)
    link = link_in(received.messages[0])
    browser = new_browser()
    page = await browser.get(link.removeprefix(ISSUER))
    clock.advance(30 * 60)
    late = await browser.post("/account/reset", data={
        "csrf_token": csrf_token(page.text), "token": token_of(link),
        "new_password": NEW_PASSWORD})
    assert late.status_code == 400 and "no longer works" in late.text
    await account_sign_in(new_browser(), password=PASSWORD)


@pytest.mark.parametrize("token", ["", "forged", "x" * 200, "\u00e9t\u00e9"])
async def test_a_forged_link_is_refused(client: httpx.AsyncClient, ctx: Context,
                                        token: str) -> None:
    await make_user(ctx)
    page = await client.get("/account/reset", params={"token": token})
    assert page.status_code == 400 and "no longer works" in page.text
    forgot = await client.get("/account/forgot")
    refused = await client.post("/account/reset", data={
        "csrf_token": csrf_token(forgot.text), "token": token, "new_password": NEW_PASSWORD})
    assert refused.status_code == 403  # no form of ours was filled in


async def test_a_weak_new_password_keeps_the_link(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    await ask_for_link(client, "alice@example.com")
    await deliver(ctx)
    link = link_in(received.messages[0])
    short = await choose(new_browser(), link, "short")
    assert short.status_code == 400 and "at least 8 characters" in short.text
    assert (await choose(new_browser(), link)).status_code == 200


async def test_a_reset_ends_every_session_and_refresh_token(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int],
        new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    shop = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "email", "offline_access"])
    flow = Flow(shop)
    tokens = (await redeem(client, flow, await get_code(
        client, flow, scope="openid offline_access"))).json()
    account = new_browser()
    await account_sign_in(account)
    assert (await account.get("/account")).status_code == 200
    await ask_for_link(new_browser(), "alice@example.com")
    await deliver(ctx)
    # The account center's sign-in was from a new device, so a notice came first (item 8).
    (reset,) = [m for m in received.messages if m["Subject"] == "Reset your password"]
    await choose(new_browser(), link_in(reset))
    refused = await client.post("/token", headers=shop.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    userinfo = await client.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    # The account center's session is over too.
    assert (await account.get("/account")).status_code in (303, 307)


async def test_requests_for_links_are_throttled(
        client: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    statuses = [(await ask_for_link(client, "alice@example.com")).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # The same for an address no account has: the limit tells nothing.
    statuses = [(await ask_for_link(client, "nobody@example.com")).status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    await deliver(ctx)
    assert len(received.messages) == 3


async def test_mail_waits_in_the_outbox_while_the_relay_is_down(
        settings: Settings, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock) -> None:
    received, _ = inbox
    await make_user(ctx)
    down = build_context(settings.model_copy(update={"smtp_port": free_port()}), clock=clock)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=create_app(down.settings, ctx=down)), base_url=ISSUER) as http:
            await ask_for_link(http, "alice@example.com")
        assert await deliver(down) == 1  # the request carried out; its mail failed
    finally:
        await down.close()
    assert received.messages == []
    async with ctx.db.transaction() as session:
        (waiting,) = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "mail"))
        assert (waiting.attempts, waiting.delivered_at, waiting.abandoned_at) == (1, None, None)
    clock.advance(3600)
    assert await deliver(ctx) == 1
    assert len(received.messages) == 1


async def test_in_dev_mode_without_a_relay_mail_is_written_to_files(
        database_url: str, tmp_path: Path, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    dev = make_settings(database_url, dev_mode=True, mail_dir=tmp_path / "mail")
    context = build_context(dev, clock=clock)
    try:
        from tests.conftest import _empty_tables
        await _empty_tables(context)
        await context.keys.ensure_keys()
        await make_user(context)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(
                app=create_app(dev, ctx=context)), base_url=ISSUER) as http:
            await ask_for_link(http, "alice@example.com")
        with caplog.at_level("WARNING", logger="idp.mail"):
            assert await deliver(context) == 2
    finally:
        await context.close()
    (written,) = (tmp_path / "mail").glob("*.eml")
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "alice@example.com"
    link = link_in(message)
    assert link in caplog.text


def test_smtp_credentials_never_go_in_clear_to_another_machine() -> None:
    with pytest.raises(ValueError, match="in clear"):
        make_settings("sqlite+aiosqlite://", smtp_host="mail.example.com",
                      smtp_security="none", smtp_username="idp", smtp_password="secret")


async def test_known_and_unknown_addresses_take_the_same_time(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: byte-identical answers in the same time: the request does the same work for
    both (the account is looked up by the outbox)."""
    monkeypatch.setattr(throttle, "RESETS_PER_NETWORK", 1000)
    for i in range(50):
        await make_user(ctx, email=f"known{i}@example.com")
    page = await client.get("/account/forgot")
    token = csrf_token(page.text)
    await assert_known_and_unknown_alike(lambda email: client.post(
        "/account/forgot", data={"csrf_token": token, "email": email}))
