"""Passkeys end to end in headless Chromium (issue 12 item 5, Done when): a customer adds a
passkey in the account center through Chromium's virtual authenticator (DevTools protocol
`WebAuthn` domain: CTAP2, internal transport, resident keys, user verification), signs out,
and signs in to an app username-less with it, landing back at the app.

WebAuthn needs a secure context and an RP ID that is a registrable domain: Chromium refuses
an IP address such as 127.0.0.1 as RP ID, while http://localhost is a secure context. So the
issuer here is http://localhost:<port> (the server still listens on 127.0.0.1, which is what
localhost resolves to); the settings and idp fixtures of tests/test_browser.py are
overridden for it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from idp.services.context import Context
from idp.settings import Settings
from tests import test_browser
from tests.conftest import make_settings
from tests.helpers import Flow, make_user
from tests.test_browser import (
    CHROMIUM,
    BrandApp,
    authorize_url,
    landed,
    native_app,
    redeem,
    screenshot,
    serve,
    sign_in,
)

idp_socket = test_browser.idp_socket
brand = test_browser.brand
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def localhost_origin(sock: socket.socket) -> str:
    return f"http://localhost:{sock.getsockname()[1]}"


@pytest.fixture
def settings(database_url: str, idp_socket: socket.socket) -> Settings:
    return make_settings(database_url, issuer=localhost_origin(idp_socket))


@pytest.fixture
async def idp(app: Any, idp_socket: socket.socket) -> AsyncIterator[str]:
    async with serve(app, idp_socket):
        yield localhost_origin(idp_socket)


async def virtual_authenticator(page: Page) -> tuple[Any, str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


async def test_add_a_passkey_then_sign_in_to_an_app_without_a_username(
        ctx: Context, idp: str, brand: BrandApp, page: Page) -> None:
    await make_user(ctx)
    shop = await native_app(ctx, brand, "Shop")
    cdp, authenticator = await virtual_authenticator(page)
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text)
            if "Content Security Policy" in m.text else None)

    await page.goto(f"{idp}/account/login")
    await sign_in(page)
    await page.wait_for_url(f"{idp}/account")
    await page.get_by_role("link", name="Sign-in and security").first.click()
    await page.get_by_role("link", name="Manage passkeys").click()
    await page.wait_for_url(f"{idp}/account/passkeys")
    await page.get_by_label("Name for the new passkey").fill("Test laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await page.wait_for_url(f"{idp}/account/passkeys?done=added")
    await expect(page.locator("[data-passkey-name]")).to_have_text("Test laptop")
    await screenshot(page, "passkeys-added")
    credentials = (await cdp.send("WebAuthn.getCredentials",
                                  {"authenticatorId": authenticator}))["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"] is True
    await page.goto(f"{idp}/account")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{idp}/account/login")

    flow = Flow(shop)
    # The login page's conditional request (mediation "conditional", offered in the email
    # field's autofill) is answered by the virtual authenticator at once, as a customer
    # picking the passkey there would: no email address typed, no button pressed.
    await page.goto(authorize_url(idp, flow))
    await page.wait_for_url("**/consent")
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    tokens = await redeem(idp, flow, landed(brand, page, flow, idp))
    assert tokens["claims"]["amr"] == ["hwk", "user", "mfa"]
    assert tokens["claims"]["acr"] == "urn:idp:acr:mfa"
    credentials = (await cdp.send("WebAuthn.getCredentials",
                                  {"authenticatorId": authenticator}))["credentials"]
    assert credentials[0]["signCount"] >= 1
    assert csp_reports == []
