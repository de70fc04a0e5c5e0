"""Two-step sign-in end to end in headless Chromium (issue 12 item 6, Done when): a customer
sets up an authenticator app from the account center (the setup key read from the page, the
codes computed with pyotp at the server's injected time), signs out, and signs in to an app
through the pages with password and code, landing back at the app. Server and browser
fixtures come from tests/test_browser.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.async_api import Page, expect

from idp.protocol.discovery import ACR_MFA
from idp.services.context import Context
from tests import test_browser
from tests.conftest import FakeClock
from tests.helpers import Flow, make_user
from tests.test_browser import (
    CHROMIUM,
    BrandApp,
    authorize_url,
    landed,
    native_app,
    path_of,
    redeem,
    screenshot,
    sign_in,
)

idp_socket = test_browser.idp_socket
settings = test_browser.settings
idp = test_browser.idp
brand = test_browser.brand
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


async def code_then_allow(page: Page, value: str, idp: str, brand: BrandApp, flow: Flow
                          ) -> dict[str, Any]:
    """On the code page: the code, then Allow on the consent page; the app's tokens."""
    await page.get_by_label("Code from your authenticator app").fill(value)
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/consent")
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    return await redeem(idp, flow, landed(brand, page, flow, idp))


async def test_set_up_an_app_then_sign_in_with_password_and_code(
        ctx: Context, idp: str, brand: BrandApp, page: Page, clock: FakeClock) -> None:
    await make_user(ctx)
    shop = await native_app(ctx, brand, "Shop")
    # Set up a step in the past, so the sign-in's next step is not in the future of the
    # token checks, which use the real time.
    clock.advance(-60)
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text)
            if "Content Security Policy" in m.text else None)

    await page.goto(f"{idp}/account/login")
    await sign_in(page)
    await page.wait_for_url(f"{idp}/account")
    await expect(page.locator("#two-step")).to_have_text("Two-step sign-in is off.")
    await page.get_by_role("link", name="Sign-in and security").first.click()
    await page.wait_for_url(f"{idp}/account/security")
    await expect(page.locator("#two-step")).to_contain_text("Off")
    await page.get_by_role("link", name="Set up an authenticator app").click()
    await page.wait_for_url(f"{idp}/account/totp")
    await expect(page.get_by_role("img", name="QR code for your authenticator app")
                 ).to_be_visible()
    secret = (await page.locator("#setup-key").inner_text()).replace(" ", "")
    totp = pyotp.TOTP(secret)
    await screenshot(page, "totp-setup")
    # A mistyped code keeps it off and the same setup on the page.
    await page.get_by_label("Code from the app").fill(totp.at(clock.value + 300))
    await page.get_by_role("button", name="Turn on two-step sign-in").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    assert (await page.locator("#setup-key").inner_text()).replace(" ", "") == secret
    await page.get_by_label("Code from the app").fill(totp.at(clock.value))
    await page.get_by_role("button", name="Turn on two-step sign-in").click()
    await expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    codes = await page.locator("[data-recovery-code]").all_inner_texts()
    assert len(codes) == 10
    await page.get_by_role("link", name="I have saved them").click()
    await expect(page.locator("#two-step")).to_contain_text("10 of 10 recovery codes left")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{idp}/account/login")

    clock.advance(30)  # a person's next code comes from the next step
    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow))
    await sign_in(page)
    await page.wait_for_url("**/otp")
    await expect(page.get_by_role("heading", name="Sign in to continue to Shop")).to_be_visible()
    # The code field: focused, a numeric keypad, the browser's one-time-code autofill.
    assert await page.evaluate("document.activeElement.id") == "code"
    field = page.get_by_label("Code from your authenticator app")
    assert await field.get_attribute("autocomplete") == "one-time-code"
    assert await field.get_attribute("inputmode") == "numeric"
    await field.fill("000000" if totp.at(clock.value) != "000000" else "111111")
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await screenshot(page, "totp-sign-in")
    tokens = await code_then_allow(page, totp.at(clock.value), idp, brand, flow)
    assert tokens["claims"]["amr"] == ["pwd", "otp", "mfa"]

    # A recovery code, through "Use a recovery code instead", in a fresh browser context.
    context = await page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        other = await context.new_page()
        second = Flow(shop)
        await other.goto(authorize_url(idp, second))
        await sign_in(other)
        await other.wait_for_url("**/otp")
        await other.get_by_role("link", name="Use a recovery code instead").click()
        await other.get_by_label("Recovery code").fill(codes[0].upper())
        await other.get_by_role("button", name="Continue").click()
        await other.wait_for_url(brand.callback + "?**")
        assert path_of(other) == "/callback"
        again = await redeem(idp, second, landed(brand, other, second, idp))
        assert again["claims"]["amr"] == ["pwd", "mfa"]
    finally:
        await context.close()
    assert csp_reports == []


async def test_an_app_asking_for_two_step_gets_the_code_page_alone(
        ctx: Context, idp: str, brand: BrandApp, page: Page, clock: FakeClock) -> None:
    """Step-up (OIDC Core §3.1.2.1 `acr_values`; issue 12 item 7): a browser signed in with
    the password alone, before two-step sign-in was turned on, is asked for the code and
    nothing else when an app asks for a second factor; the app gets acr and amr that say so."""
    await make_user(ctx)
    shop = await native_app(ctx, brand, "Shop")
    clock.advance(-60)  # as above: the sign-in's next step stays in the real time's past
    await page.goto(f"{idp}/account/login")
    await sign_in(page)
    await page.wait_for_url(f"{idp}/account")
    await page.goto(f"{idp}/account/totp")
    totp = pyotp.TOTP((await page.locator("#setup-key").inner_text()).replace(" ", ""))
    await page.get_by_label("Code from the app").fill(totp.at(clock.value))
    await page.get_by_role("button", name="Turn on two-step sign-in").click()
    await expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()

    clock.advance(30)
    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow, acr_values=ACR_MFA))
    await page.wait_for_url("**/otp")
    assert await page.locator("input[type=password]").count() == 0
    tokens = await code_then_allow(page, totp.at(clock.value), idp, brand, flow)
    assert (tokens["claims"]["acr"], tokens["claims"]["amr"]) == (ACR_MFA,
                                                                  ["pwd", "otp", "mfa"])
