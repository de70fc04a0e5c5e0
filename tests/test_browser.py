"""End to end in headless Chromium: a real uvicorn server, a real brand app receiving the
redirect, and the pages driven the way a customer would (labels, buttons, keyboard).

The issuer is http://127.0.0.1:<port>, so cookies are the non-__Host-, non-Secure variants.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt as pyjwt
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from idp.services.context import Context
from idp.settings import Settings
from tests.conftest import make_settings
from tests.helpers import PASSWORD, App, Flow, make_app, make_user, query_of

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
# Playwright's own launch switches that keep a test browser from background work of its own
# (extensions, field trials, the back-forward cache, crash reports): the session's Chromium
# is started directly (conftest.chromium_endpoint), so they are named here.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-extensions", "--disable-component-extensions-with-background-pages",
                 "--disable-default-apps", "--disable-field-trial-config",
                 "--disable-back-forward-cache", "--disable-dev-shm-usage", "--disable-breakpad",
                 "--disable-features=PaintHolding,OptimizationHints,MediaRouter,LensOverlay,"
                 # The address bar's suggestion popups, which Chromium now builds as web pages
                 # (chrome://omnibox-popup.top-chrome) for every window, headless included:
                 # every browser context opened two more renderers, which cost as much CPU as
                 # the page under test (Puppeteer turns them off by default as well).
                 "Translate,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
                 "--metrics-recording-only", "--password-store=basic"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Per action. Generous: on a loaded CI machine (five test processes and Chromium on two cores)
# a click on the Swagger UI page once took over 10 s. No test waits for a timeout on purpose.
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]


class InProcessServer(uvicorn.Server):
    """uvicorn on the test's event loop, leaving the test runner's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def origin_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket) -> AsyncIterator[str]:
    server = InProcessServer(uvicorn.Config(app, log_level="warning", access_log=False,
                                            lifespan="on", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
    assert server.started, "uvicorn did not start"
    try:
        yield origin_of(sock)
    finally:
        server.should_exit = True
        await task


@dataclass
class BrandApp:
    """The client's web server: records what arrives at its redirect URI."""

    origin: str
    hits: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def callback(self) -> str:
        return f"{self.origin}/callback"


def brand_app(received: list[tuple[str, dict[str, str]]]) -> Starlette:
    async def callback(request: Request) -> HTMLResponse:
        if request.method == "POST":
            params = {k: str(v) for k, v in (await request.form()).items()}
        else:
            params = dict(request.query_params)
        received.append((request.method, params))
        return HTMLResponse("<!doctype html><title>Brand app</title><h1>Back at the app</h1>")

    return Starlette(routes=[Route("/callback", callback, methods=["GET", "POST"])])


@pytest.fixture
def idp_socket() -> Iterator[socket.socket]:
    sock = bound_socket()
    yield sock
    sock.close()


@pytest.fixture
def settings(database_url: str, idp_socket: socket.socket) -> Settings:
    """Overrides conftest's: the issuer is the real server's loopback origin."""
    return make_settings(database_url, issuer=origin_of(idp_socket))


@pytest.fixture
async def idp(app: Any, idp_socket: socket.socket) -> AsyncIterator[str]:
    async with serve(app, idp_socket) as origin:
        yield origin


@pytest.fixture
async def brand() -> AsyncIterator[BrandApp]:
    sock = bound_socket()
    received: list[tuple[str, dict[str, str]]] = []
    async with serve(brand_app(received), sock) as origin:
        yield BrandApp(origin, received)


@pytest.fixture
async def chromium(chromium_endpoint: str) -> AsyncIterator[Browser]:
    """The session's Chromium (conftest.chromium_endpoint); closing disconnects and drops the
    contexts this test made."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def native_app(ctx: Context, brand: BrandApp, name: str) -> App:
    # RFC 8252 §7.3: a native app's loopback redirect; web clients may only use https.
    return await make_app(ctx, name=name, redirect_uri=brand.callback, client_type="public",
                          application_type="native", scopes=["openid", "profile", "email"])


def authorize_url(idp: str, flow: Flow, **extra: str) -> str:
    return f"{idp}/authorize?{urlencode(flow.params(**extra))}"


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, email: str = "alice@example.com", password: str = PASSWORD) -> None:
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def redeem(idp: str, flow: Flow, code: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        response = await http.post("/token", data={
            "grant_type": "authorization_code", "code": code, "client_id": flow.app.client_id,
            "redirect_uri": flow.app.redirect_uri, "code_verifier": flow.verifier})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        jwks = (await http.get("/jwks")).json()
    body: dict[str, Any] = response.json()
    id_token = body["id_token"]
    key = next(k for k in jwks["keys"] if k["kid"] == pyjwt.get_unverified_header(id_token)["kid"])
    claims: dict[str, Any] = pyjwt.decode(
        id_token, pyjwt.PyJWK(key).key, algorithms=["RS256"], audience=flow.app.client_id,
        issuer=idp, options={"require": ["exp", "iat", "sub", "nonce", "auth_time"]})
    assert claims["nonce"] == flow.nonce
    body["claims"] = claims
    return body


async def userinfo(idp: str, access_token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=idp, timeout=10) as http:
        response = await http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def landed(brand: BrandApp, page: Page, flow: Flow, idp: str) -> str:
    """The code the browser brought back to the app's callback, after checking state and iss."""
    assert page.url.startswith(brand.callback + "?"), page.url
    query = query_of(page.url)
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == flow.state
    assert query["iss"] == idp  # RFC 9207
    assert brand.hits[-1] == ("GET", query)
    return query["code"]


async def test_sign_in_and_consent_then_single_sign_on_into_a_second_app(
    ctx: Context, idp: str, brand: BrandApp, page: Page,
) -> None:
    shop = await native_app(ctx, brand, "Shop")
    magazine = await native_app(ctx, brand, "Magazine")
    sub = await make_user(ctx, name="Alice Example")
    csp_reports: list[str] = []
    page.on("console", lambda m: csp_reports.append(m.text)
            if "Content Security Policy" in m.text else None)

    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow))
    assert path_of(page).endswith("/login")
    assert await page.title() == "Sign in to Shop"
    await page.get_by_role("heading", name="Sign in to continue to Shop").wait_for()
    # autofocus on the email field; Tab walks email → password → Sign in, focus is visible.
    assert await page.evaluate("document.activeElement.id") == "email"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "password"
    await page.keyboard.press("Tab")
    focused = await page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return [document.activeElement.textContent, s.outlineStyle, s.outlineWidth]; }""")
    assert focused == ["Sign in", "solid", "3px"]
    # The stylesheet loaded under the page's CSP: the primary button carries the accent colour.
    button = page.get_by_role("button", name="Sign in", exact=True)
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(31, 95, 191)"
    await screenshot(page, "login")

    await sign_in(page)
    await page.wait_for_url("**/consent")
    assert await page.title() == "Allow Shop?"
    await page.get_by_role("heading", name="Allow Shop to use your account?").wait_for()
    assert "You are signed in as alice@example.com." in await page.inner_text("main")
    items = page.locator("ul.scopes li")
    assert [await items.nth(i).get_attribute("data-scope") for i in range(await items.count())] \
        == ["openid", "email", "profile"]  # grouped: who you are, then about you
    words = await items.all_inner_texts()
    assert "e-mail address" in words[1]
    assert "name" in words[2]
    assert await page.locator("fieldset.category legend").all_inner_texts() == [
        "Who you are", "About you"]
    assert not {"openid", "profile", "email"} & set(words)  # plain words, not scope names
    await screenshot(page, "consent")

    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    tokens = await redeem(idp, flow, landed(brand, page, flow, idp))
    assert tokens["claims"]["sub"] == sub
    assert (await userinfo(idp, tokens["access_token"]))["name"] == "Alice Example"

    cookies = {c["name"]: c for c in await page.context.cookies(idp)}
    # The browser binding, the session, and the device cookie of the password sign-in.
    assert set(cookies) == {"idp_browser", "idp_session", "idp_device"}
    for cookie in cookies.values():
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)

    # A second app in the same browser: no password, only the consent page.
    second = Flow(magazine)
    await page.goto(authorize_url(idp, second))
    assert path_of(page).endswith("/consent"), page.url
    await page.get_by_role("heading", name="Allow Magazine to use your account?").wait_for()
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback + "?**")
    again = await redeem(idp, second, landed(brand, page, second, idp))
    assert again["claims"]["sub"] == sub
    assert again["claims"]["sid"] == tokens["claims"]["sid"]
    assert again["claims"]["auth_time"] == tokens["claims"]["auth_time"]

    # Back to the first app: signed in and consented, so straight through without a page.
    third = Flow(shop)
    await page.goto(authorize_url(idp, third))
    assert (await redeem(idp, third, landed(brand, page, third, idp)))["claims"]["sub"] == sub
    assert len(brand.hits) == 3
    assert csp_reports == []


async def test_our_form_posts_carry_our_origin(
    ctx: Context, idp: str, brand: BrandApp, page: Page,
) -> None:
    """The forms' origin check (issue 11 point 3) holds in a browser without Fetch Metadata
    only if our own posts name our origin: under Referrer-Policy no-referrer Chromium sent
    `Origin: null`. The sign-in post must carry the real origin."""
    shop = await native_app(ctx, brand, "Shop")
    await make_user(ctx, name="Alice Example")
    posts: list[dict[str, str]] = []
    page.on("request", lambda request: posts.append(request.headers)
            if request.method == "POST" else None)
    await page.goto(authorize_url(idp, Flow(shop)))
    await sign_in(page)
    await page.wait_for_url("**/consent")
    assert posts and posts[0].get("origin") == idp


async def test_the_api_console_works_offline_under_its_csp(idp: str, page: Page) -> None:
    """/docs is Swagger UI from our own copy: it renders the operations of our OpenAPI
    document with nothing fetched from elsewhere and no CSP violation."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    page.on("request", lambda request: None if request.url.startswith(idp)
            else problems.append(f"request to {request.url}"))
    await page.goto(f"{idp}/docs")
    await page.get_by_text("Token endpoint").first.wait_for()
    await page.get_by_text("Token introspection (RFC 7662)").first.wait_for()
    assert problems == []


async def test_the_api_console_obtains_a_token_and_registers_a_client(
        ctx: Context, idp: str, page: Page) -> None:
    """The admin API driven from /docs as an operator would: Authorize with the admin
    client's id and secret (Swagger UI's client_credentials flow against our /token), then
    POST /admin/v1/clients with the example body."""
    from idp.services.accounts import admin

    ops = await admin.create_client(ctx, name="Ops", redirect_uris=[],
                                    grant_types=["client_credentials"],
                                    scopes=["admin:read", "admin:write"])
    assert ops.client_secret
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" else None)
    await page.goto(f"{idp}/docs")
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".modal-ux")
    # The admin scheme's form (the dialog also holds the registration endpoint's bearer).
    scheme = dialog.locator(".auth-container",
                            has=page.locator("input[data-name=clientId]"))
    await scheme.locator("input[data-name=clientId]").fill(ops.client.client_id)
    await scheme.locator("input[data-name=clientSecret]").fill(ops.client_secret)
    await scheme.get_by_text("select all").click()
    await scheme.locator("button.modal-btn.authorize").click()
    # The token was obtained: the dialog offers to remove it (the form is re-drawn).
    await dialog.get_by_role("button", name="Remove authorization").wait_for()
    await dialog.locator("button.btn-done").first.click()

    operation = page.locator("#operations-Admin-create_client_admin_v1_clients_post")
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    await operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    await status.wait_for()
    assert (await status.inner_text()).strip() == "201"
    created = [c for c in await admin.list_clients(ctx) if c.name == "Web shop"]
    assert len(created) == 1
    assert created[0].redirect_uris == ("https://shop.example.com/callback",)
    assert problems == []


async def test_pages_work_without_javascript_including_form_post(
    ctx: Context, idp: str, brand: BrandApp, chromium: Browser,
) -> None:
    shop = await native_app(ctx, brand, "Shop")
    await make_user(ctx)
    context: BrowserContext = await chromium.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        flow = Flow(shop)
        await page.goto(authorize_url(idp, flow, response_mode="form_post"))
        assert path_of(page).endswith("/login")

        await sign_in(page, password="wrong password, clearly")
        assert path_of(page).endswith("/login")
        assert await page.get_by_role("alert").inner_text() == (
            "The email address or password is not correct.")
        assert await page.get_by_label("Email address").input_value() == "alice@example.com"
        assert await page.get_by_label("Email address").get_attribute(
            "aria-describedby") == "form-error"

        await sign_in(page)
        await page.wait_for_url("**/consent")
        await page.get_by_role("button", name="Allow").click()
        await page.wait_for_load_state()
        # The form_post page cannot submit itself: it explains and offers a button.
        assert await page.title() == "Continuing…"
        # (Playwright's text engine skips <noscript>, so address the paragraph by CSS.)
        notice = page.locator("noscript p")
        assert await notice.is_visible()
        assert await notice.inner_text() == "JavaScript is off. Press the button to continue."
        assert brand.hits == []
        await page.get_by_role("button", name="Continue").click()
        await page.wait_for_url(brand.callback)
        await page.get_by_role("heading", name="Back at the app").wait_for()
        method, params = brand.hits[-1]
        assert method == "POST"
        assert set(params) == {"code", "state", "iss"}
        assert (params["state"], params["iss"]) == (flow.state, idp)
        assert (await redeem(idp, flow, params["code"]))["claims"]["nonce"] == flow.nonce
    finally:
        await context.close()


async def test_form_post_submits_itself_with_javascript(
    ctx: Context, idp: str, brand: BrandApp, page: Page,
) -> None:
    """The auto-submit script runs under the page's nonce-based CSP."""
    shop = await native_app(ctx, brand, "Shop")
    await make_user(ctx)
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text)
            if "Content Security Policy" in m.text else None)
    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow, response_mode="form_post"))
    await sign_in(page)
    await page.wait_for_url("**/consent")
    await page.get_by_role("button", name="Allow").click()
    await page.wait_for_url(brand.callback)
    assert brand.hits[-1][0] == "POST"
    assert brand.hits[-1][1]["state"] == flow.state
    assert blocked == []


async def test_deny_returns_access_denied_to_the_app(
    ctx: Context, idp: str, brand: BrandApp, page: Page,
) -> None:
    shop = await native_app(ctx, brand, "Shop")
    await make_user(ctx)
    flow = Flow(shop)
    await page.goto(authorize_url(idp, flow))
    await sign_in(page)
    await page.wait_for_url("**/consent")
    await page.get_by_role("button", name="Deny").click()
    await page.wait_for_url(brand.callback + "?**")
    assert query_of(page.url) == {
        "error": "access_denied", "error_description": "The end-user denied the request",
        "state": flow.state, "iss": idp}


def contrast_ratio(rgb_a: str, rgb_b: str) -> float:
    """WCAG 2.x contrast ratio of two `rgb(r, g, b)` colours."""

    def luminance(rgb: str) -> float:
        channels = [int(c) / 255 for c in rgb[rgb.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(rgb_a), luminance(rgb_b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_error_message_is_readable_in_light_and_dark_mode(
    ctx: Context, idp: str, brand: BrandApp, chromium: Browser, scheme: str,
) -> None:
    shop = await native_app(ctx, brand, "Shop")
    context = await chromium.new_context(color_scheme=scheme)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        await page.goto(authorize_url(idp, Flow(shop)))
        await sign_in(page, email="nobody@example.com")
        alert = page.get_by_role("alert")
        await alert.wait_for()
        colours = await alert.evaluate("""e => [getComputedStyle(e).color,
            getComputedStyle(document.body).backgroundColor]""")
        # WCAG 2.1 §1.4.3: at least 4.5:1 for body text.
        assert contrast_ratio(*colours) >= 4.5, colours
        await screenshot(page, f"login-error-{scheme}")
    finally:
        await context.close()
