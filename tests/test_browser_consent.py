"""Consent as a customer meets it, in headless Chromium against a real uvicorn server: the
consent page with purposes and optional data, Global Privacy Control, the account center
(connected apps, changing choices, delivery status, history and receipts, disconnecting), and
all of it without JavaScript.

Server, brand app and browser fixtures come from tests/test_browser.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from playwright.async_api import Browser, BrowserContext, Download, Page, expect

from idp.notifications.dispatcher import Dispatcher
from idp.services.consent import purposes
from idp.services.context import Context
from tests import test_browser
from tests.helpers import App, Flow, make_app, make_user
from tests.receiver import Receiver
from tests.test_browser import (
    CHROMIUM,
    TIMEOUT_MS,
    BrandApp,
    authorize_url,
    landed,
    path_of,
    screenshot,
    sign_in,
)

# The real server, the brand app and Chromium, as the sign-in suite sets them up (pytest finds
# fixtures by these names).
settings = test_browser.settings
idp_socket = test_browser.idp_socket
idp = test_browser.idp
brand = test_browser.brand
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]

CLAIMS_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
SCOPES = ["openid", "profile", "email", "phone", "offline_access"]
ASKED = " ".join(SCOPES)
PHONE = "Your phone number and whether it has been verified"
ORDER_UPDATES = "We email you about the orders you place."
OFFERS = "We email you offers we think you will like."
SHARING = "We share your purchase history with partner brands."


@pytest.fixture
async def shop(ctx: Context, brand: BrandApp) -> AsyncIterator[tuple[App, Receiver]]:
    """A confidential native app (loopback redirect, so it can introspect its own refresh
    tokens) with one required and two optional purposes, an optional scope and an event
    receiver of its own; and Alice, who has a phone number."""
    receiver = Receiver(status=202)
    await receiver.start()
    await purposes.create_purpose(
        ctx, purpose_id="order_updates", title="Order updates", description=ORDER_UPDATES,
        data_categories=["identity"], legal_basis="contract")
    await purposes.create_purpose(
        ctx, purpose_id="marketing_email", title="Offers by email", description=OFFERS,
        data_categories=["identity", "behavioral"])
    await purposes.create_purpose(
        ctx, purpose_id="partner_sharing", title="Share with partners", description=SHARING,
        data_categories=["behavioral"], sale_or_share=True)
    app = await make_app(ctx, name="Shop", redirect_uri=brand.callback,
                         application_type="native", client_type="confidential",
                         grant_types=["authorization_code", "refresh_token"], scopes=SCOPES,
                         optional_scopes=["phone"], event_uri=receiver.url)
    await purposes.set_client_purposes(ctx, app.client_id, {
        "order_updates": True, "marketing_email": False, "partner_sharing": False})
    await make_user(ctx, name="Alice Example", phone_number="+1 555 0100")
    try:
        yield app, receiver
    finally:
        await receiver.stop()


@pytest.fixture
async def api(ctx: Context) -> App:
    """A resource server: a confidential client that introspects access tokens."""
    return await make_app(ctx, name="Orders API", grant_types=["client_credentials"],
                          scopes=["orders:read"])


@contextlib.asynccontextmanager
async def browser_context(chromium: Browser, **options: Any) -> AsyncIterator[Page]:
    context: BrowserContext = await chromium.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def exchange(idp: str, flow: Flow, code: str) -> dict[str, Any]:
    """Redeem the code as the (confidential) app would; the ID token is verified."""
    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        response = await http.post("/token", headers=flow.app.basic(), data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": flow.app.redirect_uri, "code_verifier": flow.verifier})
        assert response.status_code == 200, response.text
        jwks = (await http.get("/jwks")).json()
    body: dict[str, Any] = response.json()
    id_token = body["id_token"]
    key = next(k for k in jwks["keys"] if k["kid"] == pyjwt.get_unverified_header(id_token)["kid"])
    body["claims"] = pyjwt.decode(id_token, pyjwt.PyJWK(key).key, algorithms=["RS256"],
                                  audience=flow.app.client_id, issuer=idp)
    assert body["claims"]["nonce"] == flow.nonce
    return body


async def userinfo(idp: str, access_token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        response = await http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def active(idp: str, caller: App, token: str) -> bool:
    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        response = await http.post("/introspect", data={"token": token}, headers=caller.basic())
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def downloaded_json(download: Download) -> dict[str, Any]:
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    result: dict[str, Any] = json.loads(text)
    return result


def purpose_ids(claims: dict[str, Any]) -> set[str]:
    return {p["id"] for p in claims["consent"]["purposes"]}


async def to_consent_page(page: Page, idp: str, flow: Flow, **extra: str) -> None:
    """Start an authorization asking for every scope; sign in if asked; stop on consent."""
    await page.goto(authorize_url(idp, flow, scope=ASKED, **extra))
    if path_of(page).endswith("/login"):
        await sign_in(page)
    await page.wait_for_url("**/consent")
    await page.get_by_role("heading", name="Allow Shop to use your account?").wait_for()


async def allow(page: Page, brand: BrandApp, idp: str, flow: Flow) -> dict[str, Any]:
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    return await exchange(idp, flow, landed(brand, page, flow, idp))


async def outline_of_focused(page: Page) -> list[str]:
    return list(await page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return [document.activeElement.id, s.outlineStyle, s.outlineWidth]; }"""))


async def no_horizontal_scroll(page: Page) -> bool:
    return bool(await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


async def test_consent_page_with_purposes_and_optional_data(
    ctx: Context, idp: str, brand: BrandApp, page: Page, shop: tuple[App, Receiver], api: App,
) -> None:
    app, _ = shop
    flow = Flow(app)
    await to_consent_page(page, idp, flow)

    # Data grouped under category headings, optional data as a labelled, checked checkbox.
    assert await page.locator("fieldset.category legend").all_inner_texts() == [
        "Who you are", "About you", "How you use the app"]
    who = page.locator("fieldset.category").filter(
        has=page.locator("legend", has_text="Who you are"))
    assert await who.locator("li").evaluate_all("ls => ls.map(l => l.dataset.scope)") == [
        "openid", "email", "phone"]
    phone = who.get_by_role("checkbox", name=PHONE)
    await expect(phone).to_be_checked()
    assert await page.locator('input[name="scope"]').count() == 1  # only phone is optional

    # Every purpose with its plain-words description; the required one has no checkbox.
    for purpose_id, text in (("order_updates", ORDER_UPDATES), ("marketing_email", OFFERS),
                             ("partner_sharing", SHARING)):
        await expect(page.locator(f'li[data-purpose="{purpose_id}"]')).to_contain_text(text)
    required = page.locator('li[data-purpose="order_updates"]')
    await expect(required).to_contain_text("Order updates (needed to use the app)")
    assert await required.locator("input").count() == 0
    offers = page.get_by_role("checkbox", name="Offers by email (optional)")
    sharing = page.get_by_role("checkbox", name="Share with partners (optional)")
    await expect(offers).to_have_accessible_description(OFFERS)
    await expect(sharing).to_have_accessible_description(
        SHARING + " This shares your data with partners.")
    await expect(offers).to_be_checked()
    await expect(sharing).to_be_checked()  # no GPC signal
    purposes_group = page.get_by_role("group", name="Why Shop asks")
    assert await purposes_group.get_by_role("checkbox").count() == 2
    # Each checkbox sits on the line of its label, not on a line of its own above it.
    for label in ("Offers by email", PHONE):
        box = await page.locator("label", has_text=label).bounding_box()
        tick = await page.get_by_role("checkbox", name=label).bounding_box()
        assert box and tick and box["y"] < tick["y"] + tick["height"], (label, box, tick)
    await expect(page.locator("#gpc-note")).to_have_count(0)
    await screenshot(page, "consent-purposes")

    # The keyboard reaches the optional purpose with a visible focus ring; Space declines it.
    await phone.focus()
    await page.keyboard.press("Tab")
    assert await outline_of_focused(page) == ["purpose-marketing_email", "solid", "3px"]
    await page.keyboard.press("Space")
    await expect(offers).not_to_be_checked()

    tokens = await allow(page, brand, idp, flow)
    claims = tokens["claims"]
    assert purpose_ids(claims) == {"order_updates", "partner_sharing"}
    assert claims["consent"]["gpc"] is False
    assert "phone" in tokens["scope"].split()
    assert "phone" in claims["consent"]["scopes"]
    assert (await userinfo(idp, tokens["access_token"]))["phone_number"] == "+1 555 0100"

    # Asked again: declining the optional scope (by clicking its label) takes it out.
    again = Flow(app)
    await to_consent_page(page, idp, again, prompt="consent")
    # The earlier answers are the starting point: the declined purpose is still off.
    await expect(page.get_by_role("checkbox", name="Offers by email (optional)")
                 ).not_to_be_checked()
    await expect(page.get_by_role("checkbox", name="Share with partners (optional)")
                 ).to_be_checked()
    await page.get_by_text(PHONE).click()
    await expect(page.get_by_role("checkbox", name=PHONE)).not_to_be_checked()
    narrower = await allow(page, brand, idp, again)
    assert narrower["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert "phone" not in narrower["claims"]["consent"]["scopes"]
    assert "phone_number" not in await userinfo(idp, narrower["access_token"])
    assert purpose_ids(narrower["claims"]) == {"order_updates", "partner_sharing"}
    # Narrower than before: what the earlier answer covered stops working.
    assert not await active(idp, api, tokens["access_token"])
    assert await active(idp, api, narrower["access_token"])


async def test_global_privacy_control_turns_sale_or_share_off_by_default(
    ctx: Context, idp: str, brand: BrandApp, chromium: Browser, shop: tuple[App, Receiver],
) -> None:
    app, _ = shop
    # A phone-sized screen in dark mode as well: no horizontal scrolling needed.
    async with browser_context(chromium, extra_http_headers={"Sec-GPC": "1"},
                               viewport={"width": 360, "height": 740},
                               color_scheme="dark") as page:
        flow = Flow(app)
        await to_consent_page(page, idp, flow)
        await expect(page.locator("#gpc-note")).to_have_text(
            "Your browser sent a Global Privacy Control signal, so sharing or selling your "
            "data is off unless you turn it on.")
        await expect(page.get_by_role("checkbox", name="Share with partners (optional)")
                     ).not_to_be_checked()
        await expect(page.get_by_role("checkbox", name="Offers by email (optional)")
                     ).to_be_checked()
        assert await no_horizontal_scroll(page)
        await screenshot(page, "consent-gpc-narrow-dark")
        tokens = await allow(page, brand, idp, flow)
    consent = tokens["claims"]["consent"]
    assert consent["gpc"] is True
    assert purpose_ids(tokens["claims"]) == {"order_updates", "marketing_email"}


async def test_account_center_change_history_receipt_and_disconnect(
    ctx: Context, idp: str, brand: BrandApp, page: Page, chromium: Browser,
    shop: tuple[App, Receiver], api: App,
) -> None:
    app, receiver = shop
    # The app's own browser: Alice allows everything offered.
    first = Flow(app)
    await to_consent_page(page, idp, first)
    earlier = await allow(page, brand, idp, first)
    assert purpose_ids(earlier["claims"]) == {"order_updates", "marketing_email",
                                              "partner_sharing"}

    async with browser_context(chromium) as center:
        await center.goto(f"{idp}/account")
        assert path_of(center) == "/account/login"
        await center.get_by_role("heading", name="Sign in to your account").wait_for()
        await sign_in(center)
        await center.wait_for_url(f"{idp}/account")
        await expect(center.locator("[data-apps]")).to_have_text("1 app can see your data.")
        await center.get_by_role("link", name="Apps and data").first.click()
        await center.wait_for_url(f"{idp}/account/apps")

        # Apps and data: what the app receives, by category, and each purpose's answer.
        listed = center.locator(f'li[data-client="{app.client_id}"]')
        await expect(listed.get_by_role("link", name="Shop")).to_be_visible()
        for line in ("Who you are: Sign you in with your account", PHONE,
                     "About you: Your name and basic profile",
                     "How you use the app: Stay connected", "Order updates: allowed",
                     "Offers by email: allowed", "Share with partners: allowed"):
            await expect(listed).to_contain_text(line)
        await screenshot(center, "account-apps")
        # Privacy choices: each purpose's buttons say which purpose they are for.
        await center.goto(f"{idp}/account/privacy")
        await expect(center.get_by_role("button", name="Stop Offers by email in every app")
                     ).to_be_visible()
        await expect(center.get_by_role("button", name="Allow Share with partners in every app")
                     ).to_be_visible()
        await center.goto(f"{idp}/account/apps")

        # The app's page: optional data and purposes in labelled groups; required is fixed.
        await listed.get_by_role("link", name="Shop").click()
        await center.wait_for_url(f"{idp}/account/apps/{app.client_id}")
        await center.get_by_role("heading", name="Shop", exact=True).wait_for()
        assert await center.locator("fieldset legend").all_inner_texts() == [
            "Optional data", "Why Shop uses your data"]
        await expect(center.get_by_role("group", name="Optional data").get_by_role(
            "checkbox", name=PHONE)).to_be_checked()
        required = center.get_by_role("checkbox", name="Order updates (required to use the app)")
        await expect(required).to_be_checked()
        await expect(required).to_be_disabled()
        offers = center.get_by_role("checkbox", name="Offers by email")
        await expect(offers).to_have_accessible_description(OFFERS)
        await screenshot(center, "account-app")

        await offers.uncheck()
        await center.get_by_role("button", name="Save choices").click()
        await center.wait_for_url(f"{idp}/account/apps?change=*")
        status = center.locator("#change-status")
        await expect(status).to_have_text("Applied to 0 of 1 apps; still telling Shop.")
        await expect(status).to_have_attribute("role", "status")
        # Narrower consent: what the app held until now stops working at once.
        assert not await active(idp, api, earlier["access_token"])
        assert not await active(idp, app, earlier["refresh_token"])

        dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
        try:
            assert await dispatcher.run_once() == 1
        finally:
            await dispatcher.close()
        [(content_type, body)] = receiver.bodies
        assert content_type == "application/secevent+jwt"
        event = pyjwt.decode(body, options={"verify_signature": False})
        assert {p["id"] for p in event["events"][CLAIMS_CHANGE]["claims"]["consent"][
            "purposes"]} == {"order_updates", "partner_sharing"}
        await center.reload()
        await expect(center.locator("#change-status")).to_have_text("Applied to 1 of 1 apps.")
        await expect(listed).to_contain_text("Offers by email: not allowed")
        await expect(listed).to_contain_text("Share with partners: allowed")

        # The history, newest first, with a receipt that downloads as JSON.
        await center.goto(f"{idp}/account/privacy")
        entries = center.locator("ol.timeline > li")
        assert await entries.evaluate_all("ls => ls.map(l => l.dataset.action)") == [
            "change", "grant"]
        change = entries.first
        await expect(change).to_contain_text("You changed what you share with Shop (web)")
        await expect(change).to_contain_text("stopped Offers by email")
        link = change.get_by_role("link", name="Receipt")
        entry_id = (await link.get_attribute("href") or "").rsplit("/", 1)[-1]
        async with center.expect_download() as download_info:
            await link.click()
        download = await download_info.value
        assert download.suggested_filename == f"consent-{entry_id}.json"
        receipt = await downloaded_json(download)
        assert receipt["consentReceiptID"] == entry_id
        assert receipt["event"]["type"] == "modified"
        given = {p["purposeId"]: p["consentGiven"] for p in receipt["services"][0]["purposes"]}
        assert given == {"order_updates": True, "marketing_email": False,
                         "partner_sharing": True}
        fetched = await center.request.get(f"{idp}/account/receipts/{entry_id}")
        assert fetched.ok and (await fetched.json())["consentReceiptID"] == entry_id

        # The app signs Alice in again silently and holds new tokens under the new consent.
        second = Flow(app)
        await page.goto(authorize_url(idp, second, scope=ASKED))
        await page.wait_for_url(brand.callback + "?**")
        later = await exchange(idp, second, landed(brand, page, second, idp))
        assert purpose_ids(later["claims"]) == {"order_updates", "partner_sharing"}
        assert await active(idp, api, later["access_token"])
        assert await active(idp, app, later["refresh_token"])

        # Disconnect: the app leaves the list and everything it holds stops working.
        await center.goto(f"{idp}/account/apps/{app.client_id}")
        await center.get_by_role("button", name="Disconnect Shop").click()
        await center.wait_for_url(f"{idp}/account/apps?change=*")
        await expect(center.locator("li[data-client]")).to_have_count(0)
        await expect(center.get_by_text("No app is connected to your account.")).to_be_visible()
        await center.goto(f"{idp}/account/privacy")
        assert await center.locator("ol.timeline > li").evaluate_all(
            "ls => ls.map(l => l.dataset.action)") == ["withdraw", "change", "grant"]
        assert not await active(idp, api, later["access_token"])
        assert not await active(idp, app, later["refresh_token"])


async def test_consent_and_account_center_without_javascript(
    ctx: Context, idp: str, brand: BrandApp, chromium: Browser, shop: tuple[App, Receiver],
    api: App,
) -> None:
    app, _ = shop
    async with browser_context(chromium, java_script_enabled=False) as page:
        flow = Flow(app)
        await to_consent_page(page, idp, flow)
        await page.get_by_text("Offers by email").click()  # the label toggles it, no script
        tokens = await allow(page, brand, idp, flow)
        assert purpose_ids(tokens["claims"]) == {"order_updates", "partner_sharing"}
        assert "phone" in tokens["scope"].split()

        # Same browser session: the account center opens directly, and its sections are
        # links: no script needed to find one's way.
        await page.goto(f"{idp}/account")
        assert path_of(page) == "/account"
        await page.get_by_role("link", name="Apps and data").first.click()
        await page.wait_for_url(f"{idp}/account/apps")
        listed = page.locator(f'li[data-client="{app.client_id}"]')
        await expect(listed).to_contain_text("Offers by email: not allowed")
        await listed.get_by_role("link", name="Shop").click()
        await page.wait_for_url(f"{idp}/account/apps/{app.client_id}")
        await page.get_by_text(PHONE, exact=True).click()  # stop sharing the phone number
        await page.get_by_text("Offers by email").click()  # and allow offers after all
        await page.get_by_role("button", name="Save choices").click()
        await page.wait_for_url(f"{idp}/account/apps?change=*")
        await expect(page.locator("#change-status")).to_have_text(
            "Applied to 0 of 1 apps; still telling Shop.")
        await expect(listed).to_contain_text("Offers by email: allowed")
        await expect(listed).not_to_contain_text(PHONE)
        await page.get_by_role("link", name="Privacy choices and history").click()
        change = page.locator("ol.timeline > li").first
        await expect(change).to_contain_text("allowed Offers by email; stopped your phone number")
        async with page.expect_download() as download_info:
            await change.get_by_role("link", name="Receipt").click()
        receipt = await downloaded_json(await download_info.value)
        assert receipt["event"]["type"] == "modified"
        assert receipt["services"][0]["scopes"] == ["openid", "profile", "email",
                                                    "offline_access"]
        assert not await active(idp, api, tokens["access_token"])

        await page.get_by_role("link", name="Apps and data").click()
        await listed.get_by_role("link", name="Shop").click()
        await page.get_by_role("button", name="Disconnect Shop").click()
        await page.wait_for_url(f"{idp}/account/apps?change=*")
        await expect(page.locator("li[data-client]")).to_have_count(0)
        await page.get_by_role("link", name="Privacy choices and history").click()
        await expect(page.locator("ol.timeline > li").first).to_have_attribute(
            "data-action", "withdraw")
