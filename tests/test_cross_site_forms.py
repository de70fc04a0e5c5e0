"""Cross-site form posts (issue 11 item 3): the CSRF token is the first wall; the second is the
browser's own word on where a post comes from. Every state-changing form of ours refuses, with
403 and the error page, a post that `Sec-Fetch-Site` or `Origin` says came from elsewhere, even
with a valid token replayed; a post that says nothing is judged by its token alone. Protocol
endpoints that other sites post to by design (the authorization and logout endpoints, Apple's
form_post callback) are not forms of ours and stay open to them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from idp.services.context import Context
from tests.conftest import ISSUER
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    account_sign_in,
    authorize,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
)

ALICE = "alice@example.com"
SESSION_COOKIE = "__Host-idp_session"
BROWSER_COOKIE = "__Host-idp_browser"

HOSTILE: dict[str, dict[str, str]] = {
    "Origin of another site": {"Origin": "https://evil.test"},
    "Origin of a sibling subdomain": {"Origin": "https://evil.idp.test"},
    "Origin of ours over http": {"Origin": "http://idp.test"},
    "Origin: null": {"Origin": "null"},
    "Sec-Fetch-Site: cross-site": {"Sec-Fetch-Site": "cross-site"},
    "Sec-Fetch-Site: same-site": {"Sec-Fetch-Site": "same-site"},
    "Sec-Fetch-Site: none (typed)": {"Sec-Fetch-Site": "none"},
    "cross-site with our Origin": {"Sec-Fetch-Site": "cross-site", "Origin": ISSUER},
    "same-origin contradicted by Origin": {"Sec-Fetch-Site": "same-origin",
                                           "Origin": "https://evil.test"},
}
FRIENDLY: dict[str, dict[str, str]] = {
    "our Origin": {"Origin": ISSUER},
    "same-origin": {"Sec-Fetch-Site": "same-origin", "Origin": ISSUER},
    # A page under a no-referrer policy makes a browser say Origin: null; Fetch Metadata
    # still vouches for it.
    "same-origin with Origin: null": {"Sec-Fetch-Site": "same-origin", "Origin": "null"},
    "neither header": {},
}


def assert_refused(response: httpx.Response, why: str = "another site", case: str = "") -> None:
    """403 with the error page, saying `why`; nothing set, nowhere redirected."""
    assert response.status_code == 403, f"{case}: {response.text}"
    assert "location" not in response.headers, case
    assert response.headers["content-type"].startswith("text/html"), case
    assert "<code>invalid_request</code>" in response.text, case
    assert why in response.text, case
    assert SESSION_COOKIE not in response.headers.get("set-cookie", ""), case


def path_of(response: httpx.Response) -> str:
    return urlsplit(str(response.url)).path


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx, ALICE, name="Alice Example")
    return await make_app(ctx, name="Shop")


@pytest.mark.parametrize("friendly", FRIENDLY.values(), ids=FRIENDLY.keys())
async def test_the_login_form_refuses_other_origins(
    new_browser: Any, shop: App, friendly: dict[str, str]
) -> None:
    browser = new_browser()
    page = await authorize(browser, Flow(shop))
    assert path_of(page).endswith("/login")
    form = {"csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD}
    for name, headers in HOSTILE.items():
        response = await browser.post(path_of(page), data=form, headers=headers)
        assert_refused(response, case=name)
    assert SESSION_COOKIE not in browser.cookies
    # A bad token from our own origin is refused too, as a possible forgery.
    assert_refused(await browser.post(path_of(page), data={**form, "csrf_token": "forged"},
                                      headers=friendly), "form has expired")
    # The same complete form, from our own origin or saying nothing, signs in.
    signed_in = await browser.post(path_of(page), data=form, headers=friendly)
    assert signed_in.status_code == 303, signed_in.text
    assert SESSION_COOKIE in browser.cookies
    assert path_of(await follow_to_page(browser, signed_in)).endswith("/consent")


@pytest.mark.parametrize("friendly", FRIENDLY.values(), ids=FRIENDLY.keys())
async def test_the_consent_form_refuses_other_origins(
    new_browser: Any, shop: App, friendly: dict[str, str]
) -> None:
    browser = new_browser()
    flow = Flow(shop)
    page = await login(browser, await authorize(browser, flow))
    assert path_of(page).endswith("/consent")
    form = {"csrf_token": csrf_token(page.text), "decision": "allow"}
    for name, headers in HOSTILE.items():
        response = await browser.post(path_of(page), data=form, headers=headers)
        assert_refused(response, case=name)
    # Nothing was granted: the app still has to ask.
    silent = await browser.get("/authorize", params=Flow(shop).params(prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    assert_refused(await browser.post(path_of(page), data={**form, "csrf_token": "forged"},
                                      headers=friendly), "form has expired")
    allowed = await browser.post(path_of(page), data=form, headers=friendly)
    assert allowed.status_code == 303, allowed.text
    assert query_of(allowed.headers["location"])["state"] == flow.state
    assert "code" in query_of(allowed.headers["location"])


@pytest.mark.parametrize("friendly", FRIENDLY.values(), ids=FRIENDLY.keys())
async def test_an_account_center_form_refuses_other_origins(
    new_browser: Any, shop: App, friendly: dict[str, str]
) -> None:
    browser = new_browser()
    await account_sign_in(browser, ALICE)
    profile = await browser.get("/account/profile")
    form = {"csrf_token": csrf_token(profile.text), "name": "Mallory"}
    for name, headers in HOSTILE.items():
        response = await browser.post("/account/profile", data=form, headers=headers)
        assert_refused(response, case=name)
    assert 'value="Alice Example"' in (await browser.get("/account/profile")).text
    assert_refused(await browser.post("/account/profile", data={**form, "csrf_token": "x"},
                                      headers=friendly), "form has expired")
    saved = await browser.post("/account/profile", data={**form, "name": "Alice Liddell"},
                               headers=friendly)
    assert saved.status_code == 303, saved.text
    assert 'value="Alice Liddell"' in (await browser.get("/account/profile")).text


async def test_every_state_changing_form_has_the_second_wall(
    new_browser: Any, app: FastAPI, ctx: Context, shop: App
) -> None:
    """Every POST form of ours, each with the valid token its page would carry, refused from
    another origin: the wall stands where the token is checked, not route by route."""
    browser = new_browser()
    page = await authorize(browser, Flow(shop))
    iid = path_of(page).split("/")[2]
    await account_sign_in(browser, ALICE)
    cookies = app.state.cookies
    browser_id = browser.cookies[BROWSER_COOKIE]
    interaction = {f"/interaction/{iid}/{form}": f"{form}:{iid}"
                   for form in ("login", "register", "consent", "cancel")}
    account = {f"/account/{path}": f"account:{purpose}" for path, purpose in (
        ("login", "login"), ("profile", "profile"), ("password", "password"),
        ("reauth", "reauth"), ("identities/link", "identities"),
        ("identities/some-id/remove", "identities"), ("purposes/marketing", "apps"),
        ("apps/some-app", "apps"), ("apps/some-app/disconnect", "apps"),
        ("logout", "logout"), ("delete", "delete"), ("export", "export"),
        ("forgot", "forgot"), ("reset", "reset"))}
    forms = {**interaction, **account, "/federation/google/start": f"federation:{iid}",
             "/logout/confirm": "logout"}
    for path, purpose in forms.items():
        data = {"csrf_token": cookies.csrf_token(browser_id, purpose), "interaction": iid,
                "email": ALICE, "password": PASSWORD, "decision": "logout",
                "confirmation": "DELETE"}
        for name, headers in HOSTILE.items():
            response = await browser.post(path, data=data, headers=headers)
            assert response.status_code == 403, f"{path} {name}: {response.text}"
            assert "another site" in response.text
    # Nothing happened: still signed in, the account and its profile intact.
    profile = await browser.get("/account/profile")
    assert profile.status_code == 200 and 'value="Alice Example"' in profile.text


async def test_protocol_endpoints_stay_open_to_other_sites(
    new_browser: Any, app: FastAPI, shop: App
) -> None:
    """The authorization and logout endpoints take posts from the apps' sites, and Apple answers
    with a cross-site form_post (response_mode=form_post, protected by its state)."""
    cross = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    browser = new_browser()
    started = await browser.post("/authorize", data=Flow(shop).params(), headers=cross)
    assert started.status_code == 303
    assert re.fullmatch(r"/interaction/[^/]+/login", urlsplit(started.headers["location"]).path)
    logout = await browser.post("/logout", data={"client_id": shop.client_id}, headers=cross)
    assert logout.status_code == 200
    apple = {"Origin": "https://appleid.apple.com", "Sec-Fetch-Site": "cross-site"}
    # Like Apple's real post, it carries none of our SameSite=Lax cookies.
    answered = await new_browser().post("/federation/apple/callback", data={
        "state": "s", "code": "c"}, headers=apple)
    assert answered.status_code == 200  # the re-navigation page, as without the headers
    assert 'action="/federation/apple/callback"' in answered.text
