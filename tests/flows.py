"""A browser signing in through an upstream of tests/upstreams.py: pressing "Continue with …"
on our login page, the round trip through the fake and back to us, and what the brand app
sees afterwards. Requirement numbers refer to federation.md §9."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from idp.services.context import Context
from idp.store.models import Identity
from tests.conftest import ISSUER
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    approve,
    csrf_token,
    make_app,
    offered_imports,
    query_of,
    walk,
)
from tests.upstreams import APPLE_CALLBACK

# --- any upstream ------------------------------------------------------------------------


async def press_continue(browser: httpx.AsyncClient, login_page: httpx.Response, alias: str
                         ) -> httpx.Response:
    """Press "Continue with <alias>" on our login page; returns our answer to the start."""
    token = login_page.text.split('name="csrf_token" value="')[2].split('"')[0]
    interaction = urlsplit(str(login_page.url)).path.split("/")[2]
    return await browser.post(f"/federation/{alias}/start", data={
        "csrf_token": token, "interaction": interaction})


async def start_upstream(browser: httpx.AsyncClient, shop: App, alias: str
                         ) -> tuple[Flow, httpx.Response]:
    """The brand app asks us to sign in again (prompt=login); the customer presses
    "Continue with <alias>"; returns our answer to the start (a redirect to the upstream)."""
    flow = Flow(shop)
    page = await walk(browser, await browser.get("/authorize",
                                                 params=flow.params(prompt="login")))
    assert urlsplit(str(page.url)).path.endswith("/login"), page.text
    assert f'data-upstream="{alias}"' in page.text
    start = await press_continue(browser, page, alias)
    assert start.status_code == 303
    return flow, start


async def back_from_upstream(browser: httpx.AsyncClient, app: FastAPI, start: httpx.Response,
                             alias: str) -> httpx.Response:
    """From our redirect to the upstream, through it, to the page we answer its callback with."""
    if alias != "apple":
        return await walk(browser, start)
    # Apple answers with a cross-site form_post (federation.md §2.3).
    apple_page = await browser.get(start.headers["location"])
    renavigate = await cross_site_post(app, apple_page)
    _, action, fields = form_of(renavigate.text)
    return await walk(browser, await browser.get(action, params=tuple(fields)))


async def prove_account(browser: httpx.AsyncClient, prompt: httpx.Response, email: str
                        ) -> httpx.Response:
    """At "An account already uses this email address", sign in to that account with its
    password so that the identity is linked to it (requirement 19); returns where we land."""
    action = prompt.text.split('<form method="post" action="')[1].split('"')[0]
    handle = prompt.text.split('name="link" value="')[1].split('"')[0]
    return await walk(browser, await browser.post(action, data={
        "csrf_token": csrf_token(prompt.text), "link": handle, "email": email,
        "password": PASSWORD}))


async def signed_in(browser: httpx.AsyncClient, shop: App) -> bool:
    """Whether the browser's session still signs it in to the app without a login page."""
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    return not urlsplit(str(page.url)).path.endswith("/login")


async def refresh(browser: httpx.AsyncClient, shop: App, token: str) -> int:
    """The status of the app's refresh token grant."""
    return (await browser.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": token}, headers=shop.basic())).status_code


# --- Google ------------------------------------------------------------------------------


def google_base(browser: httpx.AsyncClient) -> str:
    return next(str(p.pattern) for p in browser._mounts if "fake" in str(p.pattern))


async def continue_with_google(browser: httpx.AsyncClient, page: httpx.Response
                               ) -> httpx.Response:
    assert 'data-upstream="google"' in page.text
    response = await press_continue(browser, page, "google")
    assert response.status_code == 303
    assert response.headers["location"].startswith(google_base(browser))
    return await walk(browser, response)


async def sign_in_with_google(browser: httpx.AsyncClient, app: App) -> tuple[Flow, str]:
    flow = Flow(app)
    page = await walk(browser, await browser.get("/authorize", params=flow.params()))
    assert urlsplit(str(page.url)).path.endswith("/login")
    page = await continue_with_google(browser, page)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        # The customer saves every attribute offered (tests/test_profile_import.py asks).
        page = await approve(browser, page, offered_imports(page.text))
    assert page.status_code == 303, page.text
    return flow, query_of(page.headers["location"])["code"]


# --- Apple -------------------------------------------------------------------------------


def form_of(html: str) -> tuple[str, str, list[tuple[str, str]]]:
    """The method, action and fields of the (single) auto-submitting form of a page."""
    form = re.search(r'<form method="(\w+)"\s+action="([^"]+)"', html, re.I)
    assert form, html
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return (form.group(1).lower(), unescape(form.group(2)),
            [(unescape(k), unescape(v)) for k, v in fields])


async def at_apple(browser: httpx.AsyncClient, app: App, **extra: str
                   ) -> tuple[Flow, httpx.Response]:
    """From the brand app's authorization request to Apple's form_post page."""
    flow = Flow(app)
    page = await walk(browser, await browser.get("/authorize", params=flow.params(**extra)))
    assert urlsplit(str(page.url)).path.endswith("/login")
    assert 'data-upstream="apple"' in page.text
    start = await press_continue(browser, page, "apple")
    assert start.status_code == 303 and start.headers["location"].startswith(
        "https://apple.fake/auth/authorize")
    apple_page = await browser.get(start.headers["location"])
    assert apple_page.status_code == 200
    return flow, apple_page


async def cross_site_post(app, apple_page: httpx.Response) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Apple's page POSTs to our callback from apple.com: no SameSite=Lax cookie goes along."""
    method, action, fields = form_of(apple_page.text)
    assert method == "post" and action == APPLE_CALLBACK
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ISSUER) as cookieless:
        return await cookieless.post(action, data=dict(fields))


async def back_from_apple(browser: httpx.AsyncClient, app, brand: App,  # type: ignore[no-untyped-def]
                          **extra: str) -> tuple[Flow, httpx.Response]:
    """At Apple and back: its cross-site form_post, then our re-navigation (requirement 5:
    a top-level GET from our own origin, which carries our Lax cookies) to the callback.
    Returns the callback's answer."""
    flow, apple_page = await at_apple(browser, brand, **extra)
    renavigate = await cross_site_post(app, apple_page)
    assert renavigate.status_code == 200
    method, action, fields = form_of(renavigate.text)
    assert method == "get" and action == "/federation/apple/callback"
    return flow, await browser.get(action, params=tuple(fields))


async def sign_in_with_apple(browser: httpx.AsyncClient, app, brand: App,  # type: ignore[no-untyped-def]
                             **extra: str) -> tuple[Flow, str]:
    flow, back = await back_from_apple(browser, app, brand, **extra)
    page = await walk(browser, back)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        # The customer saves every attribute offered (tests/test_profile_import.py asks).
        page = await approve(browser, page, offered_imports(page.text))
    assert page.status_code == 303, page.text
    return flow, query_of(page.headers["location"])["code"]


async def apple_identity(ctx: Context) -> Identity:
    async with ctx.db.transaction() as session:
        return (await session.scalars(select(Identity).where(Identity.alias == "apple"))).one()


# --- Facebook ----------------------------------------------------------------------------


async def continue_with_facebook(browser: httpx.AsyncClient, app: App
                                 ) -> tuple[Flow, httpx.Response]:
    flow = Flow(app)
    page = await walk(browser, await browser.get("/authorize", params=flow.params()))
    assert urlsplit(str(page.url)).path.endswith("/login")
    assert 'data-upstream="facebook"' in page.text
    start = await press_continue(browser, page, "facebook")
    assert start.status_code == 303
    assert start.headers["location"].startswith("https://facebook.fake/v21.0/dialog/oauth")
    page = await walk(browser, start)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        # The customer saves every attribute offered (tests/test_profile_import.py asks).
        page = await approve(browser, page, offered_imports(page.text))
    return flow, page


async def facebook_user(browser: httpx.AsyncClient, ctx: Context) -> App:
    """A customer signed in to a new brand app with Facebook; returns the app."""
    shop = await make_app(ctx)
    _, done = await continue_with_facebook(browser, shop)
    assert done.status_code == 303
    assert await signed_in(browser, shop)
    return shop
