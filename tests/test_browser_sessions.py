"""Where you're signed in, end to end in headless Chromium (issue 12 item 8): the customer signs
in from two browsers, sees both in the account center, signs the other one out from here, and
the other browser is signed out. Server and browser fixtures come from tests/test_browser.py."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from idp.services.context import Context
from idp.settings import Settings
from tests import test_browser
from tests.conftest import make_settings
from tests.helpers import PASSWORD, make_user
from tests.mailbox import Inbox, with_relay
from tests.test_browser import CHROMIUM, origin_of

idp_socket = test_browser.idp_socket
idp = test_browser.idp
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
LAPTOP_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def settings(database_url: str, idp_socket: socket.socket, inbox: tuple[Inbox, int]
             ) -> Settings:
    return with_relay(make_settings(database_url, issuer=origin_of(idp_socket)), inbox[1])


@pytest.fixture
async def laptop(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context(user_agent=LAPTOP_UA)
    context.set_default_timeout(test_browser.TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def sign_in(page: Page, idp: str) -> None:
    await page.goto(f"{idp}/account/login")
    await page.get_by_label("Email address").fill("alice@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(f"{idp}/account")


async def test_the_other_browser_is_signed_out_from_the_account_center(
        ctx: Context, idp: str, page: Page, laptop: Page) -> None:
    await make_user(ctx)
    await sign_in(page, idp)
    await sign_in(laptop, idp)
    await page.get_by_role("link", name="Sign-in and security").first.click()
    await page.get_by_role("link", name="See and sign out your devices").click()
    await expect(page.get_by_role("heading", name="Where you're signed in")).to_be_visible()
    sessions = page.locator("ul.sessions > li")
    await expect(sessions).to_have_count(2)
    mine = page.locator("li[data-current]")
    await expect(mine).to_contain_text("This device")
    await expect(mine).to_contain_text("Chrome on Linux")
    other = page.locator("ul.sessions > li:not([data-current])")
    await expect(other).to_contain_text("Firefox on Windows")
    await expect(other).to_contain_text("Network: 127.0.0.0/24")
    await other.get_by_role("button", name="Sign out this device").click()
    await expect(page.get_by_role("status")).to_contain_text("1 session was signed out.")
    await expect(sessions).to_have_count(1)
    await laptop.goto(f"{idp}/account")
    await laptop.wait_for_url(f"{idp}/account/login")
    await page.goto(f"{idp}/account/activity")
    await expect(page.locator("ol.timeline > li").first).to_contain_text(
        "Signed out Firefox on Windows")
