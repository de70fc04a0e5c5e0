"""Sessions and devices in the account center, the new-device notice and the security timeline
(issue 12 item 8; security.md ATO-14, ATO-15), through HTTP, with mail read from a real local
SMTP server."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from idp.notifications.outbox import BACKCHANNEL_LOGOUT
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import BrowserSession, OutboxMessage, SecurityEvent
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import PASSWORD, Flow, account_sign_in, csrf_token, get_code, make_app, make_user
from tests.mailbox import Inbox, deliver, with_relay

EMAIL = "alice@example.com"
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36")
LAPTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
MAC_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
          "Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


@pytest.fixture
async def browser(app: Any) -> Any:
    """A factory of browsers (cookie jars) with their own User-Agent and client address."""
    opened: list[httpx.AsyncClient] = []

    def factory(agent: str | bytes | None, address: str = "203.0.113.7") -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=ISSUER,
            headers={"User-Agent": agent} if agent is not None else {})
        opened.append(http)
        return http

    yield factory
    for http in opened:
        await http.aclose()


def sessions_of(html: str) -> list[dict[str, str]]:
    """The listed sessions: sid, device, network, and whether it is this browser."""
    found = []
    for match in re.finditer(r'<li data-session="([^"]+)"( data-current="true")?>\s*'
                             r'<strong>([^<]*)</strong>.*?Network: ([^<]*)</li>', html, re.S):
        found.append({"sid": match[1], "current": bool(match[2]), "device": match[3],
                      "network": match[4]})
    return found


def notices(received: Inbox) -> list[EmailMessage]:
    return [m for m in received.to(EMAIL) if m["Subject"].startswith("New sign-in")]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def sign_out(http: httpx.AsyncClient) -> None:
    page = await http.get("/account")
    token = re.search(r'action="/account/logout".*?name="csrf_token" value="([^"]+)"',
                      page.text, re.S)
    assert token, page.text
    assert (await http.post("/account/logout", data={"csrf_token": token[1]})).status_code == 303


async def test_sessions_are_listed_with_device_and_network_and_a_new_device_is_told(
        browser: Any, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock) -> None:
    received, _ = inbox
    await make_user(ctx)
    phone = browser(PHONE_UA, "203.0.113.7")
    await account_sign_in(phone)
    assert await deliver(ctx) == 0  # the account's first sign-in: nothing to tell
    clock.advance(60)
    laptop = browser(LAPTOP_UA, "2001:db8:1:2::5")
    await account_sign_in(laptop)
    assert received.messages == []  # never inline: the outbox sends it
    assert await deliver(ctx) == 1
    (notice,) = notices(received)
    assert notice["Subject"] == "New sign-in to your account from Firefox on Windows"
    text = text_of(notice)
    assert "Device: Firefox on Windows" in text and "Network: 2001:db8:1:2::/64" in text
    assert f"{ISSUER}/account/forgot" in text and f"{ISSUER}/account/sessions" in text

    page = await phone.get("/account/sessions")
    assert page.status_code == 200
    listed = sessions_of(page.text)
    assert [(s["device"], s["network"], s["current"]) for s in listed] == [
        ("Chrome on Android", "203.0.113.0/24", True),
        ("Firefox on Windows", "2001:db8:1:2::/64", False)]
    assert "This device" in page.text and "stay connected" in page.text


async def test_a_new_device_signing_in_to_an_app_is_told_too(
        browser: Any, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock) -> None:
    """The notice comes from an app's login page as from the account center's: that sign-in's
    unit of work writes it to the outbox beside the session and the code."""
    received, _ = inbox
    await make_user(ctx)
    await account_sign_in(browser(PHONE_UA))
    assert await deliver(ctx) == 0
    clock.advance(60)
    laptop = browser(LAPTOP_UA, "2001:db8:1:2::5")
    assert await get_code(laptop, Flow(await make_app(ctx)))
    assert await deliver(ctx) == 1
    (notice,) = notices(received)
    assert notice["Subject"] == "New sign-in to your account from Firefox on Windows"
    assert "Network: 2001:db8:1:2::/64" in text_of(notice)


async def test_a_recognised_device_gets_no_notice_and_the_limit_holds(
        browser: Any, ctx: Context, inbox: tuple[Inbox, int], clock: FakeClock) -> None:
    received, _ = inbox
    await make_user(ctx)
    await account_sign_in(browser(PHONE_UA))
    laptop = browser(LAPTOP_UA)
    await account_sign_in(laptop)
    await deliver(ctx)
    assert len(notices(received)) == 1
    # The same browser again, signed out in between: its device cookie vouches for it.
    await sign_out(laptop)
    await account_sign_in(laptop)
    await deliver(ctx)
    assert len(notices(received)) == 1
    # New browsers of the same kind within the hour: one notice per device name an hour.
    for _ in range(3):
        await account_sign_in(browser(LAPTOP_UA))
    await deliver(ctx)
    assert len(notices(received)) == 1
    # Rotating device names does not flood the mailbox: three notices an hour per account.
    for agent in (IPHONE_UA, MAC_UA, "curl/8.0", PHONE_UA + " x"):
        await account_sign_in(browser(agent))
    await deliver(ctx)
    assert len(notices(received)) == 3
    clock.advance(3600)
    await account_sign_in(browser(LAPTOP_UA))
    await deliver(ctx)
    assert len(notices(received)) == 4
    # Every one of these sign-ins is in the timeline, notice or not.
    async with ctx.db.transaction() as session:
        kinds = list(await session.scalars(select(SecurityEvent.kind).where(
            SecurityEvent.kind == "signed_in")))
    assert len(kinds) == 11


async def test_ending_one_session_tells_its_apps_and_signs_that_browser_out(
        browser: Any, ctx: Context, clock: FakeClock) -> None:
    await make_user(ctx)
    phone, laptop = browser(PHONE_UA), browser(LAPTOP_UA, "198.51.100.4")
    await account_sign_in(phone)
    shop = await make_app(ctx, backchannel_logout_uri="https://app.example/bcl")
    await get_code(laptop, Flow(shop))
    page = await phone.get("/account/sessions")
    other = next(s for s in sessions_of(page.text) if not s["current"])
    assert other["device"] == "Firefox on Windows" and other["network"] == "198.51.100.0/24"
    ended = await phone.post(f"/account/sessions/{other['sid']}/end",
                             data={"csrf_token": csrf_token(page.text)})
    assert ended.status_code == 303 and ended.headers["location"] == "/account/sessions?ended=1"
    async with ctx.db.transaction() as session:
        told = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == BACKCHANNEL_LOGOUT)))
    assert [(m.client_id, m.payload["claims"]["sid"]) for m in told] == [
        (shop.client_id, other["sid"])]
    assert (await laptop.get("/account")).headers["location"] == "/account/login"
    left = sessions_of((await phone.get("/account/sessions")).text)
    assert [s["current"] for s in left] == [True]
    # The same form again: that session is over.
    again = await phone.post(f"/account/sessions/{other['sid']}/end",
                             data={"csrf_token": csrf_token(page.text)})
    assert again.status_code == 400


async def test_end_every_other_session(browser: Any, ctx: Context) -> None:
    await make_user(ctx)
    phone = browser(PHONE_UA)
    await account_sign_in(phone)
    others = [browser(agent) for agent in (LAPTOP_UA, IPHONE_UA)]
    for other in others:
        await account_sign_in(other)
    page = await phone.get("/account/sessions")
    assert len(sessions_of(page.text)) == 3
    response = await phone.post("/account/sessions/end-others",
                                data={"csrf_token": csrf_token(page.text)})
    assert response.headers["location"] == "/account/sessions?ended=2"
    page = await phone.get(response.headers["location"])
    assert "2 sessions were signed out." in page.text
    assert [s["current"] for s in sessions_of(page.text)] == [True]
    for other in others:
        assert (await other.get("/account")).status_code == 303
    assert (await phone.get("/account")).status_code == 200


async def test_another_accounts_session_cannot_be_ended_and_forms_need_their_token(
        browser: Any, ctx: Context) -> None:
    await make_user(ctx)
    await make_user(ctx, "bob@example.com")
    alice, bob = browser(PHONE_UA), browser(LAPTOP_UA)
    await account_sign_in(alice)
    await account_sign_in(bob, "bob@example.com")
    await account_sign_in(browser(IPHONE_UA), "bob@example.com")
    await account_sign_in(browser(IPHONE_UA))
    bobs = sessions_of((await bob.get("/account/sessions")).text)[0]["sid"]
    page = await alice.get("/account/sessions")
    token = csrf_token(page.text)
    for sid in (bobs, "no-such-session", "x" * 65):
        refused = await alice.post(f"/account/sessions/{sid}/end", data={"csrf_token": token})
        assert refused.status_code == 400, sid
        assert "not one of yours" in refused.text
    assert (await bob.get("/account")).status_code == 200
    # CSRF: no token, another form's token, another browser's token.
    mine = sessions_of(page.text)[0]["sid"]
    bob_token = csrf_token((await bob.get("/account/sessions")).text)
    for data in ({"other": "x"}, {"csrf_token": "forged"}, {"csrf_token": bob_token}):
        assert (await alice.post("/account/sessions/end-others", data=data)).status_code == 403
        assert (await alice.post(f"/account/sessions/{bobs}/end", data=data)).status_code == 403
    assert (await bob.get("/account")).status_code == 200
    assert sessions_of((await alice.get("/account/sessions")).text)[0]["sid"] == mine
    # A NUL byte in the form is refused before anything is looked up.
    nul = await alice.post("/account/sessions/end-others", data={"csrf_token": token + "\x00"})
    assert nul.status_code == 400
    # Nobody signed in sees nothing.
    stranger = browser(None)
    for path in ("/account/sessions", "/account/activity"):
        response = await stranger.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/account/login"
    assert (await stranger.post("/account/sessions/end-others")).status_code == 400


@pytest.mark.parametrize(("agent", "device"), [
    ("Mozilla/5.0 " + "A" * 20_000, "Unknown device"),
    ("Mozilla/5.0 (Windows NT 10.0) Chrome/126.0 Safari/537.36 " + "x" * 7_000,
     "Chrome on Windows"),
    (b"\xff\xfe<script>alert(1)</script>", "Unknown device"),
    (b"Mozilla/5.0 (Windows NT 10.0)\x00 Chrome/126.0\x00", "Chrome on Windows"),
    ("", "Unknown device"),
    (None, "Unknown device"),
])
async def test_bad_user_agents_give_a_plain_device_name(
        browser: Any, ctx: Context, agent: str | bytes | None, device: str) -> None:
    await make_user(ctx)
    http = browser(agent)
    await account_sign_in(http)
    page = await http.get("/account/sessions")
    assert sessions_of(page.text)[0]["device"] == device
    assert "<script>" not in page.text
    async with ctx.db.transaction() as session:
        row = (await session.scalars(select(BrowserSession))).one()
    assert row.device == device and len(row.device) <= 64


async def test_the_timeline_lists_events_newest_first_a_page_at_a_time(
        browser: Any, ctx: Context, clock: FakeClock) -> None:
    await make_user(ctx)
    phone = browser(PHONE_UA)
    for _ in range(21):
        await account_sign_in(phone)
        clock.advance(10)
    # A wrong password against the account is a failed sign-in in its timeline; one against
    # an address no account has is recorded nowhere.
    stranger = browser(LAPTOP_UA, "198.51.100.4")
    login = await stranger.get("/account/login")
    for address in ("nobody@example.com", EMAIL):
        failed = await stranger.post("/account/login", data={
            "csrf_token": csrf_token(login.text), "email": address, "password": "wrong one"})
        assert failed.status_code == 200
    clock.advance(10)
    page = await phone.get("/account/activity")
    assert page.status_code == 200
    items = re.findall(r"<li>\s*<strong>([^<]*)</strong>\s*<span class=\"muted\">([^<]*)</span>",
                       page.text)
    assert len(items) == 20
    assert items[0][0] == "A sign-in failed: wrong password"
    assert "Firefox on Windows · network 198.51.100.0/24" in items[0][1]
    assert items[1][0] == "Signed in with your password"
    assert "Chrome on Android · network 203.0.113.0/24" in items[1][1]
    assert 'rel="next" href="/account/activity?page=2"' in page.text
    assert 'rel="prev"' not in page.text
    second = await phone.get("/account/activity?page=2")
    rest = re.findall(r"<li>\s*<strong>([^<]*)</strong>", second.text)
    # 21 sign-ins and one failure: two left for the second page, the first sign-in last.
    assert rest == ["Signed in with your password",
                    "Signed in with your password from a new device"]
    assert 'rel="prev" href="/account/activity?page=1"' in second.text
    assert 'rel="next"' not in second.text
    async with ctx.db.transaction() as session:
        failures = list(await session.scalars(select(SecurityEvent).where(
            SecurityEvent.kind == "sign_in_failed")))
    assert len(failures) == 1 and failures[0].user_id is not None
    assert PASSWORD not in str(failures[0].detail) and "wrong one" not in str(failures[0].detail)
    for odd in ("0", "-3", "abc", "99999999", "1\x00"):
        assert (await phone.get("/account/activity", params={"page": odd})).status_code in (
            200, 400)


async def test_an_apps_sign_in_moves_the_sessions_last_use_at_most_every_five_minutes(
        ctx: Context, new_browser: Any, clock: FakeClock) -> None:
    """Each code issued in a session is a use of it; the row is written only when the last
    use it holds is more than five minutes old."""
    await make_user(ctx)
    shop = await make_app(ctx)
    browser = new_browser()
    await get_code(browser, Flow(shop))
    started = int(clock.value)

    async def last_use() -> int | None:
        async with ctx.db.transaction() as session:
            return (await session.scalars(select(BrowserSession))).one().last_used_at

    assert await last_use() == started
    clock.advance(299)
    await get_code(browser, Flow(shop))  # single sign-on: a code, no sign-in
    assert await last_use() == started
    clock.advance(2)
    await get_code(browser, Flow(shop))
    assert await last_use() == started + 301
