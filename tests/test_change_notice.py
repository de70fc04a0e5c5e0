"""The notice mailed to an account's address when a way into it changes (security.md ATO-15):
the password, two-step sign-in, passkeys, connected sign-in providers; through HTTP, with the
mail read from a real local SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from idp.services.accounts import operators
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import User
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.fakes.google import FakeGoogle
from tests.flows import sign_in_with_google
from tests.helpers import PASSWORD, account_sign_in, csrf_token, make_app, make_user
from tests.mailbox import Inbox, deliver, with_relay
from tests.test_account_linking import connect, identities_of, remove
from tests.test_passkeys import Authenticator, add_passkey
from tests.test_totp import code, confirm_again, enrol
from tests.upstreams import Browsers

EMAIL = "alice@example.com"
LAPTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SUBJECT = "A change to how you sign in to idp operator"


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


@pytest.fixture
async def laptop(app: Any) -> Any:
    async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 40000)),
            base_url=ISSUER, headers={"User-Agent": LAPTOP_UA}) as http:
        yield http


def notices(received: Inbox) -> list[str]:
    """The plain text of each change notice the account's address got, oldest first."""
    return [text_of(m) for m in received.to(EMAIL) if m["Subject"] == SUBJECT]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


async def change_password(browser: httpx.AsyncClient, current: str, new: str
                          ) -> httpx.Response:
    security = await browser.get("/account/security")
    token = csrf_token(security.text.split('action="/account/password"')[1])
    return await browser.post("/account/password", data={
        "csrf_token": token, "current_password": current, "new_password": new})


async def test_two_step_on_and_off_are_mailed_with_when_and_from_where(
        laptop: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    secret, codes = await enrol(laptop, clock)
    assert received.messages == []  # the outbox sends it, never the request
    assert await deliver(ctx) == 1
    (on,) = notices(received)
    assert "Two-step sign-in was turned on for your idp operator account." in on
    assert "Device: Firefox on Windows" in on and "Network: 203.0.113.0/24" in on
    # Where to take the account back, from our issuer; never the secret or a code.
    for link in ("/account/forgot", "/account/security", "/account/sessions"):
        assert f"{ISSUER}{link}" in on
    assert secret not in on and not any(c in on for c in codes)
    assert "administrator" not in on

    # Turning it off asks for the password and a code again; each code is used once.
    clock.advance(30)
    await confirm_again(laptop, secret, clock, "/account/totp/remove")
    clock.advance(30)
    page = await laptop.get("/account/totp/remove")
    removed = await laptop.post("/account/totp/remove", data={
        "csrf_token": csrf_token(page.text), "code": code(secret, clock)})
    assert removed.status_code == 303
    assert await deliver(ctx) == 1
    assert "Two-step sign-in was turned off for your idp operator account." in \
        notices(received)[-1]


async def test_a_password_change_is_mailed_and_a_refused_one_is_not(
        laptop: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    await account_sign_in(laptop)
    refused = await change_password(laptop, "not the password", "a new long passphrase")
    assert refused.status_code == 200
    assert await deliver(ctx) == 0
    changed = await change_password(laptop, PASSWORD, "a new long passphrase")
    assert changed.status_code == 303
    assert await deliver(ctx) == 1
    (notice,) = notices(received)
    assert "The password of your idp operator account was changed." in notice
    html = received.to(EMAIL)[-1].get_body(preferencelist=("html",))
    assert html is not None
    assert f'<a href="{ISSUER}/account/forgot">Reset your password</a>' in html.get_content()


async def test_an_operator_reset_is_one_notice_that_says_so_and_names_no_device(
        laptop: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    secret, _ = await enrol(laptop, clock)
    # Adding a passkey asks for the password and a code again (a sensitive action).
    clock.advance(30)
    await confirm_again(laptop, secret, clock, "/account/passkeys")
    await add_passkey(laptop, Authenticator(), "Phone")
    assert await deliver(ctx) == 2
    added, on = sorted(notices(received), key=lambda text: "turned on" in text)
    assert "A passkey was added to your idp operator account." in added
    assert "Device: Firefox on Windows" in added and "Phone" not in added
    assert "Two-step sign-in was turned on for your idp operator account." in on

    # Support resets both second factors at once: one mail names both, and who did it.
    await operators.reset_second_factors(ctx, user_id, actor="support")
    assert await deliver(ctx) == 1
    reset = notices(received)[-1]
    assert "Two-step sign-in was turned off for your idp operator account.\r\n" \
           "A passkey was removed from your idp operator account." in reset
    assert "An administrator of idp operator made this change." in reset
    assert "Device:" not in reset and "Network:" not in reset


async def test_the_notice_is_in_the_accounts_language(
        laptop: httpx.AsyncClient, ctx: Context, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    user_id = await make_user(ctx)
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(ui_locale="ar"))
    await account_sign_in(laptop)
    assert (await change_password(laptop, PASSWORD, "a new long passphrase")).status_code \
        == 303
    await deliver(ctx)
    (mail,) = received.to(EMAIL)
    assert mail["Subject"] == "تغيير في طريقة تسجيل دخولك إلى idp operator"
    assert mail["Content-Language"] == "ar"
    assert "تم تغيير كلمة مرور حسابك في idp operator." in text_of(mail)


async def test_connecting_and_removing_a_provider_is_mailed_but_an_account_made_with_it_not(
        ctx: Context, google: FakeGoogle, browsers: Browsers,
        inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    alice = await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    await connect(laptop, "google")
    assert await deliver(ctx) == 1
    (linked,) = notices(received)
    assert "Signing in with Google was connected to your idp operator account." in linked
    [identity] = await identities_of(ctx, alice)
    assert (await remove(laptop, identity.id)).status_code == 303
    await deliver(ctx)
    assert "Signing in with Google was disconnected from your idp operator account." in \
        notices(received)[-1]

    # That Google account, no longer on Alice's, now signs up: a new account's first way in
    # is no change to report.
    before = len(received.messages)
    await sign_in_with_google(browsers(google), await make_app(ctx))
    assert len(await identities_of(ctx, alice)) == 0
    await deliver(ctx)
    assert [m["Subject"] for m in received.messages[before:]] == []
