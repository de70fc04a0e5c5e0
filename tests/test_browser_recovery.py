"""Recovery end to end in headless Chromium (issue 12, Done when): a customer who forgot the
password resets it from the login page with the link the local SMTP server received, and
changes the account's address from the account center, confirming from the new inbox.
Server and browser fixtures come from tests/test_browser.py; the inbox from tests/mailbox.py."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from idp.services.context import Context
from idp.settings import Settings
from tests import test_browser
from tests.conftest import make_settings
from tests.helpers import PASSWORD, Flow, make_user
from tests.mailbox import Inbox, deliver, link_in, with_relay
from tests.test_browser import CHROMIUM, BrandApp, authorize_url, native_app, origin_of

idp_socket = test_browser.idp_socket
idp = test_browser.idp
brand = test_browser.brand
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
NEW_PASSWORD = "a fresh uncommon passphrase"


@pytest.fixture
def settings(database_url: str, idp_socket: socket.socket, inbox: tuple[Inbox, int]
             ) -> Settings:
    return with_relay(make_settings(database_url, issuer=origin_of(idp_socket)), inbox[1])


async def test_a_forgotten_password_is_reset_from_the_login_page(
        ctx: Context, idp: str, brand: BrandApp, page: Page, inbox: tuple[Inbox, int]) -> None:
    received, _ = inbox
    await make_user(ctx)
    shop = await native_app(ctx, brand, "Shop")
    await page.goto(authorize_url(idp, Flow(shop)))
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    await deliver(ctx)
    (mail,) = received.messages
    await page.goto(link_in(mail))
    await page.get_by_label("New password").fill("sunshine")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("alert")).to_contain_text("most common")
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    # Not signed in by the reset: the new password signs in, the old one does not.
    await page.get_by_role("link", name="Sign in").click()
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_label("Password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{idp}/account")
    # The link was used up.
    await page.goto(link_in(mail))
    await expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()


async def test_the_address_is_changed_from_the_account_center(
        ctx: Context, idp: str, page: Page, inbox: tuple[Inbox, int], new_page: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    await page.goto(f"{idp}/account/login")
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.get_by_role("link", name="Sign-in and security").first.click()
    await page.get_by_role("link", name="Change your email address").click()
    await page.get_by_label("New email address").fill("alice@new.example")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your new inbox")).to_be_visible()
    await deliver(ctx)
    (confirm,) = received.to("alice@new.example")
    # Opened where the new inbox is read: another browser, no session needed.
    other = await new_page()
    await other.goto(link_in(confirm))
    await other.get_by_role("button", name="Confirm").click()
    await expect(other.get_by_role("heading", name="Address changed")).to_be_visible()
    await deliver(ctx)
    (notice,) = received.to("alice@example.com")
    assert "/account/email/undo?token=" in link_in(notice)
    await page.goto(f"{idp}/account")
    await expect(page.get_by_text("alice@new.example").first).to_be_visible()


@pytest.fixture
async def new_page(chromium: Any) -> Any:
    contexts = []

    async def make() -> Page:
        context = await chromium.new_context()
        context.set_default_timeout(test_browser.TIMEOUT_MS)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


async def test_a_new_customer_registers_with_a_mailed_link_and_lands_in_the_app(
        ctx: Context, idp: str, brand: BrandApp, page: Page, inbox: tuple[Inbox, int]) -> None:
    """Issue 12 item 2 end to end: the address first, "check your inbox", the link, a
    password, consent, back at the app with a verified address."""
    received, _ = inbox
    shop = await native_app(ctx, brand, "Shop")
    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow))
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_role("heading", name="Create an account to continue to Shop").wait_for()
    assert await page.get_by_label("Password").count() == 0
    await page.get_by_label("Email address").fill("Bob@Example.com")
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    await deliver(ctx)
    (mail,) = received.messages
    assert mail["To"] == "bob@example.com"
    await page.goto(link_in(mail))
    await expect(page.get_by_role("heading", name="Choose a password")).to_be_visible()
    password = page.get_by_label("Password")
    assert await password.get_attribute("autocomplete") == "new-password"
    # Too short: the browser's own constraint validation keeps the form on the page.
    await password.fill("short")
    await page.get_by_role("button", name="Create account").click()
    assert await password.evaluate("p => p.validity.tooShort") is True
    await password.fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/consent")
    assert "You are signed in as bob@example.com." in await page.inner_text("main")
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    tokens = await test_browser.redeem(idp, flow, test_browser.landed(brand, page, flow, idp))
    info = await test_browser.userinfo(idp, tokens["access_token"])
    assert (info["email"], info["email_verified"]) == ("bob@example.com", True)
