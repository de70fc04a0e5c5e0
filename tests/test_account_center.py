"""The account center as sections one can find one's way in (issue 15 item 7): an overview
that sums up each section first, a page per section, a navigation that says where one is,
old links that still lead somewhere; and what its pages' HTML promises a screen reader and a
keyboard (item 5: labels, errors tied to their fields, headings, titles, autocomplete). The
browser tests run axe-core over the same pages."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from idp.services.context import Context
from idp.web.responses import templates
from tests.conftest import FakeClock
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    csrf_token,
    get_code,
    make_app,
    make_user,
)
from tests.test_consent import define_purposes, shop_app, tokens_with

SECTIONS = [("/account", "Overview"), ("/account/profile", "Profile"),
            ("/account/security", "Sign-in and security"), ("/account/apps", "Apps and data"),
            ("/account/privacy", "Privacy choices and history")]
PAGES = {"/account/security": "Sign-in and security", "/account/apps": "Apps and data",
         "/account/privacy": "Privacy choices and history"}


@dataclass
class Field:
    tag: str
    attrs: dict[str, str]


class Page(HTMLParser):
    """What a page tells assistive technology: its title, headings, the account navigation,
    form fields and their labels, alerts, button names, and every id."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.headings: list[tuple[int, str]] = []
        self.nav: list[tuple[str, str | None]] = []  # href, aria-current
        self.fields: list[Field] = []
        self.labels: set[str] = set()
        self.alerts: list[str] = []  # their ids
        self.ids: list[str] = []
        self.buttons: list[str] = []
        self._open: list[str] = []
        self._text: list[str] = []
        self._in_nav = False
        self._button: list[str] | None = None
        self._in_svg = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if a.get("role") == "alert":
            self.alerts.append(a.get("id", ""))
        if tag == "svg":
            self._in_svg = True  # its <title> names the picture, not the page
        if tag == "nav" and "account-nav" in a.get("class", ""):
            self._in_nav = True
        if tag == "a" and self._in_nav:
            self.nav.append((a["href"], a.get("aria-current")))
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.fields.append(Field(tag, a))
        if tag == "label" and "for" in a:
            self.labels.add(a["for"])
        if tag == "button":
            self._button = []
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") or (tag == "title" and not self._in_svg):
            self._open.append(tag)
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._in_svg = False
        if tag == "nav":
            self._in_nav = False
        if tag == "button" and self._button is not None:
            self.buttons.append(" ".join("".join(self._button).split()))
            self._button = None
        if self._open and tag == self._open[-1]:
            self._open.pop()
            text = " ".join("".join(self._text).split())
            if tag == "title":
                self.title = text
            else:
                self.headings.append((int(tag[1]), text))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)
        if self._button is not None:
            self._button.append(data)


def parse(response: httpx.Response) -> Page:
    page = Page()
    page.feed(response.text)
    return page


def assert_accessible(page: Page) -> None:
    """WCAG 1.3.1, 2.4.6, 3.3.1, 3.3.2, 4.1.2 as far as the markup shows them."""
    assert len(page.ids) == len(set(page.ids)), "duplicate ids"
    for f in page.fields:
        assert f.attrs.get("id") in page.labels, f"field without a label: {f.attrs}"
        for ref in f.attrs.get("aria-describedby", "").split():
            assert ref in page.ids, f"aria-describedby names no element: {ref}"
    described = {ref for f in page.fields for ref in f.attrs.get("aria-describedby", "").split()}
    if page.fields:
        for alert in page.alerts:
            assert alert in described, f"an error tied to no field: {alert}"
    levels = [level for level, _ in page.headings]
    assert levels and levels[0] == 1 and levels.count(1) == 1, page.headings
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), page.headings
    assert all(page.buttons), "a button with no name"
    assert page.title.endswith("Your account"), page.title


def field_named(page: Page, name: str) -> dict[str, str]:
    (found,) = [f.attrs for f in page.fields if f.attrs.get("name") == name]
    return found


def summary_line(html: str, attribute: str) -> tuple[str, str]:
    match = re.search(rf'{attribute}="([^"]*)">([^<]*)<', html)
    assert match, attribute
    return match.group(1), match.group(2)


async def connected(new_browser: Any, ctx: Context, apps: int) -> httpx.AsyncClient:
    """Alice's browser, signed in, with `apps` apps connected through the code flow."""
    await make_user(ctx)
    browser: httpx.AsyncClient = new_browser()
    for i in range(apps):
        app = await make_app(ctx, name=f"App {i}", redirect_uri=f"https://app.example/{i}")
        await get_code(browser, Flow(app))
    if not apps:
        await account_sign_in(browser)
    return browser


# -- The overview ----------------------------------------------------------------------------


@pytest.mark.parametrize(("apps", "said"), [
    (0, "No app can see your data."), (1, "1 app can see your data."),
    (3, "3 apps can see your data."),
])
async def test_the_overview_counts_the_apps_that_can_see_your_data(
        new_browser: Any, ctx: Context, apps: int, said: str) -> None:
    browser = await connected(new_browser, ctx, apps)
    overview = await browser.get("/account")
    assert overview.status_code == 200
    assert summary_line(overview.text, "data-apps") == (str(apps), said)
    assert summary_line(overview.text, "data-devices") == ("1", "Signed in on 1 device.")
    assert summary_line(overview.text, "data-two-step") == ("off", "Two-step sign-in is off.")
    assert summary_line(overview.text, "data-passkeys") == ("0", "You have no passkeys yet.")
    listed = await browser.get("/account/apps")
    assert listed.text.count("data-client=") == apps
    # Connected at the same instant of the test clock: listed in no particular order.
    assert [f"App {i}" for i in range(apps)] == sorted(re.findall(
        r'<a href="/account/apps/[^"]+">([^<]+)</a>', listed.text))


async def test_the_overview_counts_devices_and_optional_uses(
        new_browser: Any, ctx: Context, clock: FakeClock) -> None:
    await define_purposes(ctx)
    await make_user(ctx, name="Alice Example")
    browser = new_browser()
    shop = await shop_app(ctx)
    # Offers by email allowed, sharing with partners not; order updates are required.
    await tokens_with(browser, shop, ["phone"], ["marketing_email"])
    consented_at = int(clock())
    clock.advance(3600)
    await account_sign_in(new_browser())  # a second device
    overview = await browser.get("/account")
    assert summary_line(overview.text, "data-devices") == ("2", "Signed in on 2 devices.")
    assert summary_line(overview.text, "data-optional-allowed") == (
        "1", "You allow 1 of 2 optional uses of your data.")
    when = templates.env.filters["when"](consented_at)
    assert f"Your last consent change: {when}." in overview.text
    assert "Your name: <bdi>Alice Example</bdi>" in overview.text
    assert summary_line(overview.text, "data-methods") == (
        "1", "You sign in with your password.")


async def test_the_overview_leads_to_every_section(new_browser: Any, ctx: Context) -> None:
    browser = await connected(new_browser, ctx, 0)
    overview = await browser.get("/account")
    page = parse(overview)
    assert page.title == "Your account"
    assert page.headings == [(1, "Your account"), (2, "Profile"), (2, "Sign-in and security"),
                             (2, "Apps and data"), (2, "Privacy choices and history")]
    for href, _ in SECTIONS[1:]:
        assert f'<h2><a href="{href}">' in overview.text
    assert page.nav == [(href, "page" if href == "/account" else None) for href, _ in SECTIONS]
    # Signing out is on the overview, as it was on the one long page.
    assert 'action="/account/logout"' in overview.text
    assert_accessible(page)


# -- The sections ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/account", *PAGES])
async def test_every_section_needs_a_sign_in(new_browser: Any, ctx: Context, path: str) -> None:
    anonymous = new_browser()
    response = await anonymous.get(path)
    assert response.status_code == 303 and response.headers["location"] == "/account/login"
    # Signed out again: the same.
    browser = await connected(new_browser, ctx, 0)
    overview = await browser.get("/account")
    logout = re.search(r'action="/account/logout">\s*<input type="hidden" name="csrf_token" '
                       r'value="([^"]+)"', overview.text)
    assert logout
    await browser.post("/account/logout", data={"csrf_token": logout.group(1)})
    response = await browser.get(path)
    assert response.status_code == 303 and response.headers["location"] == "/account/login"


@pytest.mark.parametrize(("path", "name"), list(PAGES.items()))
async def test_each_section_is_a_page_marked_in_the_navigation(
        new_browser: Any, ctx: Context, path: str, name: str) -> None:
    await define_purposes(ctx)
    await make_user(ctx)
    browser = new_browser()
    shop = await shop_app(ctx)
    await tokens_with(browser, shop, ["phone"], ["marketing_email"])
    response = await browser.get(path)
    assert response.status_code == 200
    page = parse(response)
    assert page.title == f"{name} — Your account"
    assert page.headings[0] == (1, name)
    assert page.nav == [(href, "page" if href == path else None) for href, _ in SECTIONS]
    assert_accessible(page)
    html = response.text
    expected = {
        "/account/security": ['data-method="password"', 'action="/account/password"',
                              'id="two-step"', 'href="/account/totp"',
                              'href="/account/passkeys"', 'href="/account/sessions"',
                              'href="/account/activity"', 'href="/account/email"',
                              'data-devices="1"'],
        "/account/apps": [f'data-client="{shop.client_id}"',
                          f'href="/account/apps/{shop.client_id}"', "Offers by email: allowed",
                          "Share with partners: not allowed", 'href="/account/data-access"'],
        "/account/privacy": ['action="/account/purposes/marketing_email"',
                             "allowed in 1 of 1 apps", 'data-action="grant"',
                             'href="/account/receipts/', 'href="/account/export"',
                             'href="/account/delete"', 'href="/account/privacy/choices"'],
    }[path]
    assert [piece for piece in expected if piece not in html] == []


@pytest.mark.parametrize(("path", "section"), [
    ("/account/sessions", "/account/security"), ("/account/activity", "/account/security"),
    ("/account/passkeys", "/account/security"), ("/account/email", "/account/security"),
    ("/account/totp", "/account/security"), ("/account/export", "/account/privacy"),
    ("/account/delete", "/account/privacy"), ("/account/apps/{client_id}", "/account/apps"),
])
async def test_a_page_inside_a_section_marks_the_section(
        new_browser: Any, ctx: Context, path: str, section: str) -> None:
    await make_user(ctx)
    browser = new_browser()
    app = await make_app(ctx)
    await get_code(browser, Flow(app))
    response = await browser.get(path.format(client_id=app.client_id))
    assert response.status_code == 200, response.headers.get("location")
    page = parse(response)
    assert page.nav == [(href, "true" if href == section else None) for href, _ in SECTIONS]
    assert page.title.endswith(" — Your account") and page.title != " — Your account"
    assert_accessible(page)


def test_the_navigation_needs_nothing_but_the_path() -> None:
    """Other pages include account_nav.html as it is: the current place comes from the path."""
    nav = templates.env.get_template("account_nav.html")

    def marks(path: str | None) -> list[tuple[str, str | None]]:
        context = {} if path is None else {
            "request": SimpleNamespace(url=SimpleNamespace(path=path))}
        page = Page()
        page.feed(nav.render(context))
        return page.nav

    for path in ("/account/profile", "/account/profile/"):
        assert marks(path) == [(h, "page" if h == "/account/profile" else None)
                               for h, _ in SECTIONS]
    for path, section in (("/account/privacy/choices", "/account/privacy"),
                          ("/account/data-access", "/account/apps"),
                          ("/account/apps/some-app", "/account/apps")):
        assert marks(path) == [(h, "true" if h == section else None) for h, _ in SECTIONS]
    assert marks(None) == marks("/privacy/do-not-sell") == [(h, None) for h, _ in SECTIONS]
    assert marks("/accountant") == [(h, None) for h, _ in SECTIONS]


# -- Old links and where forms land ----------------------------------------------------------


async def test_old_links_to_the_one_long_page_lead_to_their_section(
        new_browser: Any, ctx: Context) -> None:
    browser = await connected(new_browser, ctx, 0)
    for query, location in (
        ({"change": "abc"}, "/account/apps?change=abc"),
        ({"password": "changed"}, "/account/security?password=changed#password"),
        ({"outcome": "cancelled", "upstream": "google"},
         "/account/security?outcome=cancelled&upstream=google#sign-in"),
        ({"change": "<b>x</b> & y"}, "/account/apps?change=%3Cb%3Ex%3C%2Fb%3E+%26+y"),
    ):
        response = await browser.get("/account", params=query)
        assert response.status_code == 303 and response.headers["location"] == location
    moved = await browser.get("/account/security?password=changed")
    assert "Your password is changed." in moved.text
    # What the query said is never shown: the change id names nothing of ours.
    assert "&lt;b&gt;" not in (await browser.get("/account/apps?change=<b>x</b>")).text
    # The fragments of the old page's sections land on the overview's summary of them.
    overview = parse(await browser.get("/account"))
    assert {"profile", "sign-in", "two-step", "passkeys", "devices", "apps",
            "privacy"} <= set(overview.ids)


async def test_forms_land_on_the_section_they_belong_to(new_browser: Any, ctx: Context) -> None:
    await define_purposes(ctx)
    await make_user(ctx)
    browser = new_browser()
    shop = await shop_app(ctx)
    await tokens_with(browser, shop, ["phone"], ["marketing_email"])
    privacy = await browser.get("/account/privacy")
    stopped = await browser.post("/account/purposes/marketing_email", data={
        "csrf_token": csrf_token(privacy.text), "decision": "stop"})
    assert stopped.status_code == 303
    assert re.fullmatch(r"/account/privacy\?change=[\w-]+", stopped.headers["location"])
    shown = await browser.get(stopped.headers["location"])
    assert 'id="change-status"' in shown.text and "allowed in 0 of 1 apps" in shown.text
    app_page = await browser.get(f"/account/apps/{shop.client_id}")
    saved = await browser.post(f"/account/apps/{shop.client_id}",
                               data={"csrf_token": csrf_token(app_page.text)})
    assert re.fullmatch(r"/account/apps\?change=[\w-]+", saved.headers["location"])
    security = await browser.get("/account/security")
    token = csrf_token(security.text.split('action="/account/password"')[1])
    changed = await browser.post("/account/password", data={
        "csrf_token": token, "current_password": PASSWORD,
        "new_password": "a new long passphrase"})
    assert changed.status_code == 303
    assert changed.headers["location"] == "/account/security?password=changed#password"
    gone = await browser.post(f"/account/apps/{shop.client_id}/disconnect",
                              data={"csrf_token": csrf_token(app_page.text)})
    assert re.fullmatch(r"/account/apps\?change=[\w-]+", gone.headers["location"])
    assert 'data-apps="0"' in (await browser.get(gone.headers["location"])).text


# -- What the markup promises assistive technology -----------------------------------------


async def test_a_refused_password_change_is_announced_and_tied_to_its_fields(
        new_browser: Any, ctx: Context) -> None:
    browser = await connected(new_browser, ctx, 0)
    security = await browser.get("/account/security")
    page = parse(security)
    assert field_named(page, "current_password")["autocomplete"] == "current-password"
    new = field_named(page, "new_password")
    assert new["autocomplete"] == "new-password"
    assert new["aria-describedby"] == "new-password-hint"
    token = csrf_token(security.text.split('action="/account/password"')[1])
    refused = await browser.post("/account/password", data={
        "csrf_token": token, "current_password": "not it", "new_password": "x" * 20})
    assert refused.status_code == 200
    page = parse(refused)
    assert page.alerts == ["password-error"]
    assert re.search(r'role="alert" id="password-error">Your current password is not correct',
                     refused.text)
    assert field_named(page, "current_password")["aria-describedby"] == "password-error"
    assert field_named(page, "new_password")["aria-describedby"] == (
        "new-password-hint password-error")
    assert_accessible(page)


async def test_the_email_and_code_forms_say_what_they_take(
        new_browser: Any, ctx: Context) -> None:
    browser = await connected(new_browser, ctx, 0)
    page = await browser.get("/account/email")
    assert field_named(parse(page), "email")["autocomplete"] == "email"
    refused = await browser.post("/account/email", data={
        "csrf_token": csrf_token(page.text), "email": "not an address"})
    assert refused.status_code == 400
    parsed = parse(refused)
    assert parsed.alerts == ["form-error"]
    assert field_named(parsed, "email")["aria-describedby"] == "form-error"
    assert_accessible(parsed)
    setup = await browser.get("/account/totp")
    code = field_named(parse(setup), "code")
    assert code["autocomplete"] == "one-time-code" and code["inputmode"] == "numeric"
    wrong = await browser.post("/account/totp", data={
        "csrf_token": csrf_token(setup.text),
        "setup": re.search(r'name="setup" value="([^"]+)"', setup.text).group(1),  # type: ignore[union-attr]
        "code": "12345"})
    parsed = parse(wrong)
    assert parsed.alerts == ["form-error"]
    assert field_named(parsed, "code")["aria-describedby"] == "form-error"
    assert_accessible(parsed)
    deletion = await browser.get("/account/delete")
    refused = await browser.post("/account/delete", data={
        "csrf_token": csrf_token(deletion.text), "confirmation": "maybe"})
    parsed = parse(refused)
    assert refused.status_code == 400 and parsed.alerts == ["delete-error"]
    assert field_named(parsed, "confirmation")["aria-invalid"] == "true"
    assert_accessible(parsed)


async def test_buttons_name_what_they_act_on(new_browser: Any, ctx: Context) -> None:
    """Several buttons of one kind on a page each say which thing they are for."""
    await define_purposes(ctx)
    await make_user(ctx)
    browser = new_browser()
    await tokens_with(browser, await shop_app(ctx), ["phone"], ["marketing_email"])
    await account_sign_in(new_browser())
    privacy = parse(await browser.get("/account/privacy"))
    assert [b for b in privacy.buttons if "every app" in b] == [
        "Allow Offers by email in every app", "Stop Offers by email in every app",
        "Allow Share with partners in every app", "Stop Share with partners in every app"]
    sessions = parse(await browser.get("/account/sessions"))
    assert [b for b in sessions.buttons if b.startswith("Sign out this device")] == [
        "Sign out this device: Unknown device"]
