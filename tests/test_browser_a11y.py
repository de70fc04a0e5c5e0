"""Issue 15, Done when: every customer-facing page in headless Chromium, in English and in
Arabic, with axe-core (from npm: tests/browser/package.json, installed by ./run test) finding
no violation of WCAG 2.2 A and AA; Arabic pages right to left, with no English left outside
left-to-right islands (addresses, codes, the switcher's "English"); no page scrolling sideways
on a 320 px wide screen; and sign-in and consent done with the keyboard alone. Server and
browser fixtures come from tests/test_browser.py."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idp.locales import catalog_locales
from idp.services.context import Context
from idp.settings import Settings
from tests import test_browser
from tests.a11y import (
    Audit,
    axe_source,
    axe_violations,
    focused,
    new_context,
    sign_in,
    submit,
    tab_to,
)
from tests.conftest import FakeClock, make_settings
from tests.helpers import PASSWORD, App, Flow, make_app, make_user
from tests.mailbox import Inbox, deliver, link_in, with_relay
from tests.test_browser import (
    CHROMIUM,
    BrandApp,
    authorize_url,
    bound_socket,
    brand_app,
    origin_of,
    serve,
)

idp_socket = test_browser.idp_socket
idp = test_browser.idp
chromium = test_browser.chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
    # The markup is the same on either database: one pass walks the pages (CI time).
    pytest.mark.skipif(bool(os.environ.get("IDP_TEST_DATABASE_URL")),
                       reason="runs on the SQLite pass; pages do not depend on the database"),
]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
LOGO = (b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="48">'
        b'<rect width="96" height="48" fill="#0b6e4f"/></svg>')


@pytest.fixture
def look(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The operator's brand (IDP_BRAND_*, a theme folder with a logo) when a test asks for
    it with `@pytest.mark.parametrize("look", ["branded"], indirect=True)`; else the default."""
    if getattr(request, "param", None) != "branded":
        return {}
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "logo.svg").write_bytes(LOGO)
    return {"theme_dir": tmp_path, "brand_name": "Acme", "brand_logo": "logo.svg",
            "brand_primary_color": "#0b6e4f", "brand_text_color": "#1a1a1a",
            "brand_background_color": "#fdf6e3", "brand_support_url": "mailto:help@acme.example"}


@pytest.fixture
def settings(database_url: str, idp_socket: socket.socket, inbox: tuple[Inbox, int],
             look: dict[str, Any]) -> Settings:
    # Dev mode: the app's logo comes from its own site on loopback over plain http.
    return with_relay(make_settings(database_url, issuer=origin_of(idp_socket), dev_mode=True,
                                    **look), inbox[1])


@pytest.fixture
async def site() -> AsyncIterator[BrandApp]:
    """The app's own site: its redirect URI and its logo (another origin than ours)."""
    async def logo(request: Request) -> Response:
        return Response(LOGO, media_type="image/svg+xml")

    received: list[tuple[str, dict[str, str]]] = []
    app = brand_app(received)
    app.router.routes.append(Route("/logo.svg", logo))
    async with serve(app, bound_socket()) as origin:
        yield BrandApp(origin, received)


@dataclass
class Apps:
    shop: App
    bank: App
    tv: App


async def register_apps(ctx: Context, site: BrandApp) -> Apps:
    await make_user(ctx, name="Alice Example")
    await make_user(ctx, email="bob@example.com")
    shop = await make_app(ctx, name="Shop", redirect_uri=site.callback, client_type="public",
                          application_type="native", scopes=["openid", "profile", "email"],
                          optional_scopes=["profile"], logo_uri=f"{site.origin}/logo.svg",
                          policy_uri=f"{site.origin}/privacy", tos_uri=f"{site.origin}/terms")
    bank = await make_app(ctx, name="Bank", redirect_uri=site.callback, client_type="public",
                          application_type="native", scopes=["openid", "profile", "email"],
                          require_mfa=True)
    tv = await make_app(ctx, name="Salon TV", redirect_uri="com.example.tv:/cb",
                        client_type="public", application_type="native",
                        grant_types=[DEVICE_GRANT], scopes=["openid", "profile"])
    return Apps(shop, bank, tv)


def flow_url(idp: str, app: App, lang: str) -> str:
    return authorize_url(idp, Flow(app), ui_locales=lang)


async def walk_flows(page: Page, audit: Audit, idp: str, apps: Apps, ctx: Context,
                     inbox: Inbox) -> None:
    """Sign-in, registration, recovery, consent, device and error pages."""
    await page.goto(f"{idp}/authorize?client_id=nobody&ui_locales={audit.lang}")
    await audit.check(page, "error page")
    await page.goto(flow_url(idp, apps.shop, audit.lang))
    await audit.check(page, "sign-in")
    login = page.url
    await sign_in(page, password="not the password at all")
    await audit.check(page, "sign-in with an error")
    await page.goto(login.removesuffix("/login") + "/register")
    await audit.check(page, "registration")
    await page.locator("#email").fill("new@example.com")
    await submit(page, "form:has(#email)")
    await audit.check(page, "registration: link sent")
    await deliver(ctx)
    await page.goto(link_in(inbox.messages[-1]))
    await audit.check(page, "signup: choose a password")
    await page.locator("#password").fill("sunshine")  # long enough, but too common
    await submit(page, "form:has(#password)")
    await audit.check(page, "signup with an error")

    await page.goto(f"{idp}/account/forgot")
    await audit.check(page, "forgot password")
    await page.locator("#email").fill("alice@example.com")
    await submit(page, "form:has(#email)")
    await audit.check(page, "forgot password: link sent")
    await deliver(ctx)
    await page.goto(link_in(inbox.messages[-1]))
    await audit.check(page, "reset password")

    await page.goto(flow_url(idp, apps.shop, audit.lang))
    await sign_in(page)
    await page.wait_for_url("**/consent")
    await audit.check(page, "consent")
    logo = page.locator("img.client-logo")
    assert await logo.evaluate("img => img.complete && img.naturalWidth") == 96
    await submit(page, "", "button[name=decision][value=allow]")

    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        started = (await http.post("/device_authorization", data={
            "client_id": apps.tv.client_id, "scope": "openid profile"})).json()
    await page.goto(f"{idp}/device")
    await audit.check(page, "device: enter the code")
    await page.goto(started["verification_uri_complete"])
    await submit(page, "form[action='/device']")
    await audit.check(page, "device: confirm the code")
    await submit(page, "", "button[name=decision][value=confirm]")
    await page.wait_for_url("**/consent")
    await submit(page, "", "button[name=decision][value=allow]")
    await audit.check(page, "device: signed in")


async def walk_account(page: Page, audit: Audit, idp: str, clock: FakeClock, ctx: Context,
                       inbox: Inbox) -> None:
    """The account center: every section and sub-page it links to, and two-step setup."""
    await page.goto(f"{idp}/account")
    if urlsplit(page.url).path == "/account/login":
        await sign_in(page)
    must = ["/account", "/account/security", "/account/apps", "/account/privacy",
            "/account/sessions", "/account/activity", "/account/email", "/account/export",
            "/account/delete", "/account/passkeys", "/account/totp", "/account/reauth",
            # Issue 16's pages: checked as soon as they exist.
            "/account/profile", "/account/data-access", "/account/privacy/choices",
            "/privacy/do-not-sell"]
    queue, done = list(must), set()
    while queue and len(done) < 60:
        path = queue.pop(0)
        if path in done:
            continue
        done.add(path)
        response = await page.goto(f"{idp}{path}")
        if response is None or response.status == 404 or "text/html" not in (
                response.headers.get("content-type") or ""):
            continue
        await audit.check(page, f"account {path}")
        links = await page.eval_on_selector_all(
            "a[href^='/account'], a[href^='/privacy']", "as => as.map(a => a.pathname)")
        # Receipts are files to keep (JSON), not pages.
        queue += [link for link in links if link not in done and "/receipts/" not in link]

    await page.goto(f"{idp}/account/email")
    await page.locator("#email").fill("alice.new@example.com")
    await submit(page, "form:has(#email)")
    await audit.check(page, "change address: link sent")
    await deliver(ctx)
    (confirm,) = [m for m in inbox.messages if m["To"] == "alice.new@example.com"]
    await page.goto(link_in(confirm))
    await audit.check(page, "change address: confirm")

    await page.goto(f"{idp}/account/totp")
    totp = pyotp.TOTP((await page.locator("#setup-key").inner_text()).replace(" ", ""))
    await page.locator("#code").fill(totp.at(clock.value))
    await submit(page, "form:has(#code)")
    await audit.check(page, "two-step on: recovery codes")
    # Removing it asks for the password and a code again (a new step: codes are used once).
    await page.goto(f"{idp}/account/totp/remove")
    if urlsplit(page.url).path == "/account/reauth":
        await page.locator("#password").fill(PASSWORD)
        await submit(page, "form:has(#password)")
        await audit.check(page, "re-authenticate: code")
        await page.locator("#code").fill(totp.at(clock.value + 30))
        await submit(page, "form:has(#code)")
    await audit.check(page, "two-step: remove")
    assert urlsplit(page.url).path == "/account/totp/remove"


async def walk_second_factor(chromium: Browser, audit: Audit, idp: str,
                                        apps: Apps) -> None:
    for email, app, name in (("alice@example.com", apps.shop, "two-step: code"),
                             ("bob@example.com", apps.bank, "two-step required")):
        context = await new_context(chromium, idp, audit.lang)
        try:
            page = await context.new_page()
            audit.watch(page)
            await page.goto(flow_url(idp, app, audit.lang))
            await sign_in(page, email)
            await audit.check(page, name)
            if app is apps.shop:
                await page.goto(f"{idp}{urlsplit(page.url).path}?recovery=1")
                await audit.check(page, "two-step: recovery code")
        finally:
            await context.close()


async def walk_logout(page: Page, audit: Audit, idp: str, apps: Apps) -> None:
    await page.goto(f"{idp}/logout?client_id={apps.shop.client_id}&ui_locales={audit.lang}")
    await audit.check(page, "logout: confirm")
    await submit(page, "", "button[name=decision][value=logout]")
    await audit.check(page, "logged out")
    # Issue 16's public page, as someone signed out sees it (once it exists).
    response = await page.goto(f"{idp}/privacy/do-not-sell")
    if response is not None and response.status != 404:
        await audit.check(page, "do not sell or share (signed out)")


@pytest.mark.parametrize("lang", ["en", "ar"])
async def test_every_page_passes_axe_in_both_languages_and_at_320_px(
        ctx: Context, idp: str, site: BrandApp, chromium: Browser, clock: FakeClock,
        inbox: tuple[Inbox, int], lang: str) -> None:
    if lang not in catalog_locales():
        pytest.skip(f"no {lang} catalog (src/idp/locales)")
    apps = await register_apps(ctx, site)
    # Two-step codes are computed at the server's injected time; a step back keeps the
    # sign-in's next step out of the token checks' future (they use the real time).
    clock.advance(-60)
    audit = Audit(lang, axe_source())
    context = await new_context(chromium, idp, lang)
    try:
        page = await context.new_page()
        # axe itself finds what it should: an unlabelled field, low contrast.
        await page.set_content('<!doctype html><html lang="en"><title>t</title><main>'
                               '<input><p style="color: #999">faint</p></main></html>')
        assert [v.split(":")[0] for v in await axe_violations(page, audit.axe)] == [
            "axe color-contrast", "axe label"]
        audit.watch(page)
        await page.goto(f"{idp}/account/login")
        await audit.check(page, "account sign-in")
        await walk_flows(page, audit, idp, apps, ctx, inbox[0])
        await walk_account(page, audit, idp, clock, ctx, inbox[0])
        await walk_second_factor(chromium, audit, idp, apps)
        await walk_logout(page, audit, idp, apps)
    finally:
        await context.close()
    audit.assert_clean()
    assert audit.csp == []
    for name in ("sign-in", "registration", "signup: choose a password", "reset password",
                 "consent", "two-step: code", "two-step required", "device: confirm the code",
                 "logout: confirm", "logged out", "error page", "account /account",
                 "account /account/security", "account /account/apps",
                 "account /account/privacy"):
        assert name in audit.seen, (name, audit.seen)


# --- the keyboard alone ----------------------------------------------------------------------


@pytest.mark.parametrize("look", ["branded"], indirect=True)
async def test_sign_in_and_consent_with_the_keyboard_alone(
        ctx: Context, idp: str, site: BrandApp, chromium: Browser) -> None:
    """In the operator's look: its logo and colours (through /static/brand.css) are what
    the browser draws, focus rings included."""
    apps = await register_apps(ctx, site)
    context = await new_context(chromium, idp, "en")
    try:
        page = await context.new_page()
        flow = Flow(apps.shop)
        await page.goto(authorize_url(idp, flow))
        assert await page.locator("img.brand-logo").evaluate(
            "img => [img.alt, img.complete && img.naturalWidth]") == ["Acme", 96]
        assert await page.evaluate("""() => [getComputedStyle(document.body).backgroundColor,
            getComputedStyle(document.body).color,
            getComputedStyle(document.querySelector('button.primary')).backgroundColor,
            getComputedStyle(document.activeElement).outlineColor]""") == [
            "rgb(253, 246, 227)", "rgb(26, 26, 26)", "rgb(11, 110, 79)", "rgb(11, 110, 79)"]
        audit = Audit("en", axe_source())
        await audit.check(page, "sign-in, branded")
        # The sign-in page starts in its first field; Shift+Tab goes back, Tab forward.
        assert (await focused(page))["id"] == "email"
        await page.keyboard.type("alice@example.com")
        await tab_to(page, lambda f: f["id"] == "password", limit=1)
        await page.keyboard.press("Shift+Tab")
        assert (await focused(page))["id"] == "email"
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await page.wait_for_url("**/consent")
        await audit.check(page, "consent, branded")
        audit.assert_clean()

        # The skip link is the first stop, shown when focused, and moves into the page.
        first = await tab_to(page, lambda f: True, limit=1)
        assert (first[0]["tag"], first[0]["text"]) == ("a", "Skip to the main content")
        await page.keyboard.press("Enter")
        assert urlsplit(page.url).fragment == "main"
        assert (await focused(page))["id"] == "main"
        # The optional data item is a checkbox: Space unticks it.
        await tab_to(page, lambda f: f["id"] == "scope-profile", limit=1)
        await page.keyboard.press("Space")
        assert not await page.locator("#scope-profile").is_checked()
        await tab_to(page, lambda f: f["value"] == "allow")
        async with page.expect_navigation():
            await page.keyboard.press("Space")
        await page.wait_for_url(site.callback + "?**")
        assert set(dict(site.hits[-1][1])) == {"code", "state", "iss"}
        assert site.hits[-1][1]["state"] == flow.state
    finally:
        await context.close()
