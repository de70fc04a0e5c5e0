"""The login, registration and consent pages, through HTTP as a browser sees them: CSRF,
security headers, the session cookie, enumeration resistance, self-registration, consent,
single sign-on and argon2id storage (RFC 6749 §10.12, §10.13; RFC 9700 §4.16; security.md §0
items 9, 10, 12, 13)."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import func, select

from idp.main import create_app
from idp.services.accounts import admin
from idp.services.context import Context, build_context
from idp.store import users as user_store
from idp.store.models import User
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    account_sign_in,
    approve,
    authorize,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
)

ALICE = "alice@example.com"
SESSION_COOKIE = "__Host-idp_session"
BROWSER_COOKIE = "__Host-idp_browser"
LOGIN_FAILED = "The email address or password is not correct."


# --- what the browser observes -------------------------------------------------------------


@contextmanager
def case(name: str) -> Iterator[None]:
    """Name the failing case when a test walks through a table of them."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"[{name}] {exc}") from exc


def path_of(response: httpx.Response) -> str:
    return urlsplit(str(response.url)).path


def interaction_of(page: httpx.Response) -> str:
    match = re.fullmatch(r"/interaction/([^/]+)/(login|register|consent)", path_of(page))
    assert match, page.url
    return match.group(1)


def assert_page(response: httpx.Response, name: str) -> None:
    assert response.status_code == 200, response.text
    assert path_of(response).endswith(f"/{name}"), response.url


def assert_error_page(response: httpx.Response, error: str, status: int = 400) -> None:
    """An error shown to the end-user; 403 when a form post was refused as a possible forgery
    (a failed CSRF token or another origin)."""
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert f"<code>{error}</code>" in response.text


def form_token(html: str, action_suffix: str) -> str:
    """The CSRF token of the form posting to `.../<action_suffix>`."""
    match = re.search(r'<form method="post" action="/interaction/[^"]+/' + action_suffix
                      + r'">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', html)
    assert match, f"no {action_suffix} form"
    return match.group(1)


def page_message(html: str) -> str | None:
    match = re.search(r'<p class="error" role="alert" id="form-error">([^<]*)</p>', html)
    return match.group(1) if match else None


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of a response, by cookie name."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def code_of(response: httpx.Response, flow: Flow) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(flow.app.redirect_uri + "?"), location
    query = query_of(location)
    assert query["state"] == flow.state
    assert query["iss"] == ISSUER
    return query["code"]


def assert_redirected_error(response: httpx.Response, flow: Flow, error: str) -> None:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(flow.app.redirect_uri + "?"), location
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == flow.state
    assert query["iss"] == ISSUER
    assert "code" not in query


async def token_claims(http: httpx.AsyncClient, flow: Flow, code: str) -> dict[str, Any]:
    """The access token's claims, read back through UserInfo and the token response."""
    response = await redeem(http, flow, code)
    assert response.status_code == 200, response.text
    body = response.json()
    info = await http.get("/userinfo",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    result: dict[str, Any] = info.json()
    return result


async def login_page(browser: httpx.AsyncClient, flow: Flow, **extra: str) -> httpx.Response:
    page = await authorize(browser, flow, **extra)
    assert_page(page, "login")
    return page


async def user_row(ctx: Context, email: str) -> User | None:
    async with ctx.db.transaction() as session:
        return await user_store.find_by_email(session, email)


async def user_count(ctx: Context) -> int:
    async with ctx.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts real argon2 hash and verify calls, whatever object makes them."""
    calls = {"verify": 0, "hash": 0}
    original_verify, original_hash = PasswordHasher.verify, PasswordHasher.hash

    def verify(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        calls["verify"] += 1
        return original_verify(self, hash, password)

    def hash_(self: PasswordHasher, password: str | bytes, **kwargs: Any) -> str:
        calls["hash"] += 1
        return original_hash(self, password, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    monkeypatch.setattr(PasswordHasher, "hash", hash_)
    return calls


@pytest.fixture
async def shop(ctx: Context) -> App:
    return await make_app(ctx, name="Acme Shop")


@pytest.fixture
async def alice(ctx: Context) -> str:
    return await make_user(ctx, ALICE, name="Alice Example")


# --- CSRF (RFC 6749 §10.12): bound to the browser, the interaction and the form ---------------


async def test_login_rejects_missing_wrong_and_foreign_csrf_tokens(
    client: httpx.AsyncClient, new_browser: Any, app: FastAPI, shop: App, alice: str,
    argon2_calls: dict[str, int]
) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    other = new_browser()
    await other.get("/authorize", params=Flow(shop).params())
    other_browser_id = other.cookies[BROWSER_COOKIE]
    second = await login_page(client, Flow(shop))
    register_page = await client.get(f"/interaction/{iid}/register")
    tokens: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "wrong": secrets.token_urlsafe(32),
        "another browser's, for this interaction":
            app.state.cookies.csrf_token(other_browser_id, f"login:{iid}"),
        "another interaction's": csrf_token(second.text),
        "the cancel form's": form_token(page.text, "cancel"),
        "the register form's": form_token(register_page.text, "register"),
    }
    for name, token in tokens.items():
        with case(name):
            data = {"email": ALICE, "password": PASSWORD}
            if token is not None:
                data["csrf_token"] = token
            response = await client.post(f"/interaction/{iid}/login", data=data)
            assert_error_page(response, "invalid_request", 403)
            assert set_cookies(response) == {}
    assert SESSION_COOKIE not in client.cookies
    assert argon2_calls["verify"] == 0
    # Nothing was consumed: the real form still works.
    response = await login(client, page)
    assert_page(response, "consent")


async def test_register_rejects_bad_csrf_tokens_and_creates_nothing(
    client: httpx.AsyncClient, ctx: Context, shop: App
) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    second = interaction_of(await login_page(client, Flow(shop)))
    other_register = await client.get(f"/interaction/{second}/register")
    tokens = {
        "missing": None,
        "wrong": secrets.token_urlsafe(32),
        "the login form's": csrf_token(page.text),
        "another interaction's": form_token(other_register.text, "register"),
    }
    for name, token in tokens.items():
        with case(name):
            data = {"email": "new@example.com", "password": PASSWORD}
            if token is not None:
                data["csrf_token"] = token
            response = await client.post(f"/interaction/{iid}/register", data=data)
            assert_error_page(response, "invalid_request", 403)
            assert set_cookies(response) == {}
    assert await user_row(ctx, "new@example.com") is None


async def test_consent_rejects_bad_csrf_tokens_and_records_nothing(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    flow = Flow(shop)
    page = await login(client, await login_page(client, flow))
    assert_page(page, "consent")
    iid = interaction_of(page)
    other = await login_page(client, Flow(shop), prompt="login")
    tokens = {
        "missing": None,
        "wrong": secrets.token_urlsafe(32),
        "the deny form's": form_token(page.text, "cancel"),
        "another interaction's login form's": csrf_token(other.text),
    }
    for name, token in tokens.items():
        with case(name):
            data = {"decision": "allow"}
            if token is not None:
                data["csrf_token"] = token
            response = await client.post(f"/interaction/{iid}/consent", data=data)
            assert_error_page(response, "invalid_request", 403)
    silent = Flow(shop)
    response = await client.get("/authorize", params=silent.params(prompt="none"))
    assert_redirected_error(response, silent, "consent_required")
    # The interaction is intact and the real form still works.
    page = await client.get(f"/interaction/{iid}/consent")
    code_of(await approve(client, page), flow)


async def test_cancel_rejects_bad_csrf_tokens(client: httpx.AsyncClient, shop: App) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    for name, token in {"missing": None, "wrong": secrets.token_urlsafe(32),
                        "the login form's": csrf_token(page.text)}.items():
        with case(name):
            data = {} if token is None else {"csrf_token": token}
            # An empty body is no form at all (400); a form without the token is refused as
            # a possible forgery (403).
            assert_error_page(await client.post(f"/interaction/{iid}/cancel", data=data),
                              "invalid_request", 400 if token is None else 403)
    assert_page(await client.get(f"/interaction/{iid}/login"), "login")


async def test_forms_accept_only_url_encoded_bodies(client: httpx.AsyncClient, shop: App,
                                                    alice: str) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    response = await client.post(f"/interaction/{iid}/login", json={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD})
    assert_error_page(response, "invalid_request")
    assert SESSION_COOKIE not in client.cookies


# --- the interaction belongs to the browser that began it -----------------------------------


async def test_an_interaction_cannot_be_continued_from_another_browser(
    client: httpx.AsyncClient, new_browser: Any, shop: App, alice: str
) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    token = csrf_token(page.text)
    without_cookies = new_browser()
    with_own_cookies = new_browser()
    await with_own_cookies.get("/authorize", params=Flow(shop).params())
    assert BROWSER_COOKIE in with_own_cookies.cookies
    # Without a browser cookie the interaction is not this browser's (400); with another
    # browser's cookie the token is not this browser's either (403, as a forgery).
    for name, browser, status in (("no cookies", without_cookies, 400),
                                  ("its own cookies", with_own_cookies, 403)):
        with case(name):
            for path in ("", "/login", "/register", "/consent"):
                assert_error_page(await browser.get(f"/interaction/{iid}{path}"),
                                  "invalid_request")
            response = await browser.post(f"/interaction/{iid}/login", data={
                "csrf_token": token, "email": ALICE, "password": PASSWORD})
            assert_error_page(response, "invalid_request", status)
            assert SESSION_COOKIE not in browser.cookies
            assert_error_page(await browser.post(f"/interaction/{iid}/cancel", data={
                "csrf_token": form_token(page.text, "cancel")}), "invalid_request", status)
    # The browser that began it carries on.
    assert_page(await login(client, page), "consent")


async def test_an_expired_interaction_shows_an_error_page(
    client: httpx.AsyncClient, shop: App, alice: str, clock: FakeClock, ctx: Context
) -> None:
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    clock.advance(30 * 60)
    assert_error_page(await client.get(f"/interaction/{iid}/login"), "invalid_request")
    # Refused before the attempt is counted: posts to a dead interaction, right password or
    # wrong, never hold the account back.
    for password in [PASSWORD] + ["wrong password"] * (ctx.settings.throttle_free_failures + 2):
        response = await client.post(f"/interaction/{iid}/login", data={
            "csrf_token": csrf_token(page.text), "email": ALICE, "password": password})
        assert_error_page(response, "invalid_request")
    assert SESSION_COOKIE not in client.cookies
    assert_page(await login(client, await login_page(client, Flow(shop))), "consent")
    # An id no interaction can have (a NUL, which PostgreSQL text cannot hold) is just as gone.
    for path in ("/interaction/ab%00cd/login", "/interaction/ab%00cd"):
        assert_error_page(await client.get(path), "invalid_request")
    response = await client.post("/interaction/ab%00cd/login", data={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD})
    # The page's CSRF token is bound to its own interaction, so this reads as a forgery.
    assert_error_page(response, "invalid_request", 403)


# --- headers on every page (RFC 9700 §4.16, §4.2.4; security.md §0 item 9) ----------------------


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    # Nothing to other sites; our own origin on our own form posts (the forms' origin check).
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    if headers.get("content-type", "").startswith("text/html"):
        # No third-party resources on any page (links to the brand's policy pages are not
        # resources).
        assert not re.search(r'<(?!a\b)[^>]*\b(src|href)="(https?:)?//', response.text), \
            response.text


async def test_every_page_carries_the_security_headers(
    client: httpx.AsyncClient, new_browser: Any, shop: App, alice: str
) -> None:
    seen: dict[str, httpx.Response] = {}
    flow = Flow(shop)
    seen["authorize redirect"] = await client.get("/authorize", params=flow.params())
    page = await follow_to_page(client, seen["authorize redirect"])
    seen["login page"] = page
    iid = interaction_of(page)
    seen["failed login"] = await client.post(f"/interaction/{iid}/login", data={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": "wrong password"})
    seen["register page"] = await client.get(f"/interaction/{iid}/register")
    seen["register error"] = await client.post(f"/interaction/{iid}/register", data={
        "csrf_token": form_token(seen["register page"].text, "register"),
        "email": "new@example.com", "password": "short"})
    seen["CSRF error"] = await client.post(f"/interaction/{iid}/login", data={"email": ALICE})
    seen["login redirect"] = await client.post(f"/interaction/{iid}/login", data={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD})
    seen["consent page"] = await follow_to_page(client, seen["login redirect"])
    seen["back to the app"] = await client.post(f"/interaction/{iid}/consent", data={
        "csrf_token": csrf_token(seen["consent page"].text)})
    seen["unknown client"] = await client.get("/authorize", params={"client_id": "nobody"})
    seen["stale interaction"] = await new_browser().get(f"/interaction/{iid}/login")
    seen["form_post"] = await client.get("/authorize", params=Flow(shop).params(
        response_mode="form_post"))
    assert [r.status_code for r in seen.values()] == [
        303, 200, 200, 200, 200, 403, 303, 200, 303, 400, 400, 200]
    assert_page(seen["consent page"], "consent")
    assert "<form" in seen["form_post"].text
    for name, response in seen.items():
        with case(name):
            assert_security_headers(response)


# --- the session cookie (security.md §0 item 10) --------------------------------------------


async def test_session_cookie_is_host_prefixed_secure_httponly_lax(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    first = await client.get("/authorize", params=Flow(shop).params())
    page = await follow_to_page(client, first)
    response = await client.post(path_of(page), data={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD})
    assert response.status_code == 303
    for name, header in ((SESSION_COOKIE, set_cookies(response).get(SESSION_COOKIE)),
                         (BROWSER_COOKIE, set_cookies(first).get(BROWSER_COOKIE))):
        with case(name):
            assert header is not None
            attributes = [a.strip().lower() for a in header.split(";")[1:]]
            assert "secure" in attributes
            assert "httponly" in attributes
            assert "samesite=lax" in attributes
            assert "path=/" in attributes
            assert not any(a.startswith("domain") for a in attributes)


async def test_every_login_gives_a_new_session_and_ends_the_old_one(
    client: httpx.AsyncClient, new_browser: Any, shop: App, alice: str
) -> None:
    # A value planted before the login (session fixation) is never adopted.
    client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="idp.test")
    flow = Flow(shop)
    code_of(await approve(client, await login(client, await login_page(client, flow))), flow)
    first = client.cookies[SESSION_COOKIE]
    assert first != "planted-by-an-attacker"

    flow = Flow(shop)
    code_of(await login(client, await login_page(client, flow, prompt="login")), flow)
    second = client.cookies[SESSION_COOKIE]
    assert second != first

    for value, works in ((first, False), (second, True)):
        with case("old" if not works else "new"):
            browser = new_browser()
            browser.cookies.set(SESSION_COOKIE, value, domain="idp.test")
            silent = Flow(shop)
            response = await browser.get("/authorize", params=silent.params(prompt="none"))
            if works:
                code_of(response, silent)
            else:
                assert_redirected_error(response, silent, "login_required")


# --- no user enumeration (security.md §0 item 12) -------------------------------------------


async def test_wrong_password_and_unknown_email_answer_identically(
    client: httpx.AsyncClient, ctx: Context, shop: App, alice: str,
    argon2_calls: dict[str, int]
) -> None:
    await admin.create_user(ctx, email="nopwd@example.com", password=None)
    await ctx.passwords.warm_up()
    page = await login_page(client, Flow(shop))
    iid = interaction_of(page)
    attempts = {
        # Addresses of one length, so even Content-Length must match.
        "wrong password": ("alice@example.com", "not the password"),
        "unknown email": ("carol@example.com", PASSWORD),
        "empty password": ("alice@example.com", ""),
        "account without a password": ("nopwd@example.com", PASSWORD),
        # A NUL, which PostgreSQL text cannot hold: no account has it.
        "address with a NUL": ("alic\x00@example.com", PASSWORD),
    }
    answers: dict[str, tuple[int, list[tuple[str, str]], str]] = {}
    for name, (email, password) in attempts.items():
        with case(name):
            before = dict(argon2_calls)
            response = await client.post(f"/interaction/{iid}/login", data={
                "csrf_token": csrf_token(page.text), "email": email, "password": password})
            # Exactly one argon2 verification, and no other hashing, whatever went wrong.
            assert argon2_calls["verify"] == before["verify"] + 1
            assert argon2_calls["hash"] == before["hash"]
            assert page_message(response.text) == LOGIN_FAILED
            body = response.text.replace(f'value="{email}"', 'value="EMAIL"')
            # The passkey request's challenge is new on every page (and of one length).
            body = re.sub(r'data-options="[^"]*"', 'data-options=""', body)
            # Every header but the request's own id (new for every request, and it tells
            # nothing of the account: idp.observability.logs).
            headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
            assert len(headers) == len(response.headers.multi_items()) - 1
            answers[name] = (response.status_code, headers, body)
    reference = answers["wrong password"]
    assert reference[0] == 200
    assert not any(k == "set-cookie" for k, _ in reference[1])
    for name, answer in answers.items():
        with case(name):
            assert answer == reference
    assert SESSION_COOKIE not in client.cookies


# --- self-registration ----------------------------------------------------------------------


# Registration now verifies the address first: tests/test_signup.py.


# --- consent --------------------------------------------------------------------------------

SCOPE_WORDS = {
    "openid": "Sign you in with your account, using an identifier that does not reveal your "
              "e-mail address",
    "profile": "Your name and basic profile: nickname, picture, birth date, gender, language "
               "and time zone",
    "email": "Your e-mail address and whether it has been verified",
    "address": "Your postal address",
    "phone": "Your phone number and whether it has been verified",
}


async def test_consent_page_names_the_app_and_describes_each_requested_scope(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    requested = ["openid", "email", "phone"]
    page = await login(client, await login_page(client, Flow(shop), scope=" ".join(requested)))
    assert_page(page, "consent")
    assert "<title>Allow Acme Shop?</title>" in page.text
    assert "<h1>Allow Acme Shop to use your account?</h1>" in page.text
    assert f"<strong>{ALICE}</strong>" in page.text
    listed = re.findall(r'<li data-scope="([^"]+)">([^<]+)</li>', page.text)
    assert listed == [(scope, SCOPE_WORDS[scope]) for scope in requested]
    assert 'data-claim="' not in page.text


async def test_app_names_are_escaped_on_the_pages(client: httpx.AsyncClient, ctx: Context,
                                                  alice: str) -> None:
    evil = await make_app(ctx, name='<img src=x onerror="alert(1)">')
    page = await login_page(client, Flow(evil))
    consent = await login(client, page)
    for response in (page, consent):
        assert "<img" not in response.text
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in response.text


async def test_deny_on_consent_returns_access_denied_with_state_and_iss(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    flow = Flow(shop)
    page = await login(client, await login_page(client, flow))
    iid = interaction_of(page)
    response = await client.post(f"/interaction/{iid}/cancel", data={
        "csrf_token": form_token(page.text, "cancel")})
    assert_redirected_error(response, flow, "access_denied")
    assert_error_page(await client.get(f"/interaction/{iid}/consent"), "invalid_request")
    # Nothing was granted; the sign-in itself stands.
    silent = Flow(shop)
    response = await client.get("/authorize", params=silent.params(prompt="none"))
    assert_redirected_error(response, silent, "consent_required")


async def test_cancel_on_login_returns_access_denied_with_state_and_iss(
    client: httpx.AsyncClient, shop: App
) -> None:
    flow = Flow(shop, state="st&te=with?chars")
    page = await login_page(client, flow)
    iid = interaction_of(page)
    response = await client.post(f"/interaction/{iid}/cancel", data={
        "csrf_token": form_token(page.text, "cancel")})
    assert_redirected_error(response, flow, "access_denied")
    assert set_cookies(response) == {}
    assert_error_page(await client.get(f"/interaction/{iid}/login"), "invalid_request")


# --- single sign-on -------------------------------------------------------------------------


async def test_single_sign_on_across_apps_with_consent_once_per_app(
    client: httpx.AsyncClient, ctx: Context, shop: App, alice: str,
    argon2_calls: dict[str, int], clock: FakeClock
) -> None:
    blog = await make_app(ctx, name="Blog", redirect_uri="https://app-b.example/callback")
    flow_a = Flow(shop)
    page = await login(client, await login_page(client, flow_a))
    info_a = await token_claims(client, flow_a, code_of(await approve(client, page), flow_a))
    verifications = argon2_calls["verify"]
    clock.advance(60)

    # App B: no password again, only B's consent page.
    flow_b = Flow(blog)
    page = await authorize(client, flow_b)
    assert_page(page, "consent")
    assert "Allow Blog to use your account?" in page.text
    assert f"<strong>{ALICE}</strong>" in page.text
    info_b = await token_claims(client, flow_b, code_of(await approve(client, page), flow_b))
    assert info_b["sub"] == info_a["sub"] == alice

    # Consent is remembered per app: codes straight away, for both.
    for app in (shop, blog, shop):
        with case(app.redirect_uri):
            flow = Flow(app)
            response = await client.get("/authorize", params=flow.params())
            code_of(response, flow)
    assert argon2_calls["verify"] == verifications

    # Asking for more than was granted asks again, for that app only.
    flow = Flow(blog)
    page = await authorize(client, flow, scope="openid profile email phone")
    assert_page(page, "consent")
    code_of(await approve(client, page), flow)


# --- argon2id storage -----------------------------------------------------------------------


@pytest.fixture
async def stronger_app(database_url: str, clock: FakeClock, ctx: Context
                       ) -> AsyncIterator[httpx.AsyncClient]:
    """The same database behind a replica whose argon2 parameters were raised."""
    settings = make_settings(database_url, argon2_time_cost=2, argon2_memory_kib=2048)
    other = build_context(settings, clock=clock)
    transport = httpx.ASGITransport(app=create_app(settings, ctx=other))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http
    finally:
        await other.close()


async def test_passwords_are_stored_as_argon2id_and_rehashed_when_parameters_change(
    client: httpx.AsyncClient, new_browser: Any, stronger_app: httpx.AsyncClient,
    ctx: Context, shop: App, alice: str
) -> None:
    async def stored_hash() -> str:
        user = await user_row(ctx, ALICE)
        assert user is not None and user.password_hash is not None
        return user.password_hash

    original = await stored_hash()
    assert original.startswith("$argon2id$v=19$m=1024,t=1,p=1$")

    # A login under the current parameters keeps the hash as it is.
    flow = Flow(shop)
    code_of(await approve(client, await login(client, await login_page(client, flow))), flow)
    assert await stored_hash() == original

    # Through a replica with stronger parameters, the login upgrades the stored hash.
    flow = Flow(shop)
    code_of(await login(stronger_app, await login_page(stronger_app, flow)), flow)
    upgraded = await stored_hash()
    assert upgraded.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert PasswordHasher().verify(upgraded, PASSWORD)

    # A failed login never rewrites it.
    browser = new_browser()
    page = await login_page(browser, Flow(shop))
    response = await browser.post(path_of(page), data={
        "csrf_token": csrf_token(page.text), "email": ALICE, "password": "wrong password"})
    assert page_message(response.text) == LOGIN_FAILED
    assert await stored_hash() == upgraded


async def test_account_pages_show_no_words_from_the_query(client: httpx.AsyncClient,
                                                          ctx: Context) -> None:
    """Content spoofing: a link to our own page must not make it say an attacker's words."""
    spoof = "Your account is locked. Call +1 555 0100"
    page = await client.get("/account/login", params={"message": spoof, "email": spoof})
    assert page.status_code == 200 and "Call +1 555" not in page.text
    await make_user(ctx)
    await account_sign_in(client)
    overview = await client.get("/account", params={"password_message": spoof})
    assert overview.status_code == 200 and "Call +1 555" not in overview.text


async def test_a_failed_account_sign_in_keeps_the_address(client: httpx.AsyncClient,
                                                          ctx: Context) -> None:
    await make_user(ctx)
    page = await client.get("/account/login")
    failed = await client.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": "not the password"})
    assert "The email address or password is not correct." in failed.text
    assert 'value="alice@example.com"' in failed.text


async def test_a_double_submitted_sign_in_issues_one_code_and_never_fails_the_other(
    client: httpx.AsyncClient, new_browser: Any, ctx: Context, shop: App, alice: str
) -> None:
    """A double click on "Sign in" of a returning customer: both posts carry the right
    password for one interaction, the sign-in and the code are one unit of work, so one post
    gets the code and the other finds the interaction finished: an error page, never a 500 and
    never a second code."""
    flow = Flow(shop)
    code_of(await approve(client, await login(client, await login_page(client, flow))), flow)
    for attempt in range(3):
        browser = new_browser()
        page = await login_page(browser, Flow(shop))
        form = {"csrf_token": csrf_token(page.text), "email": ALICE, "password": PASSWORD}
        first, second = await asyncio.gather(browser.post(path_of(page), data=form),
                                             browser.post(path_of(page), data=form))
        with case(f"attempt {attempt}"):
            to_app = [r for r in (first, second) if r.headers.get("location", "").startswith(
                shop.redirect_uri)]
            assert len(to_app) == 1, (first.status_code, second.status_code)
            assert "code" in query_of(to_app[0].headers["location"])
            other = second if to_app[0] is first else first
            assert_error_page(other, "invalid_request")
