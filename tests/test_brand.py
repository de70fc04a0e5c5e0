"""The brand's look (issue 15 item 6): the operator's name, logo, favicon, colours and links on
every page, a theme folder whose templates override ours, colours refused at start-up when
they fail WCAG contrast; and an app's own logo and policy links (OIDC Registration §2
`logo_uri`, `policy_uri`, `tos_uri`) registered every way and shown on the consent page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import update

from idp.cli.common import load_settings
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import Client
from idp.web.security import CSP
from idp.web.theme import brand_css
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import App, Flow, authorize, login, make_app, make_user, run_cli, served
from tests.test_admin_api import admin_app, bearer, token_of

LOGO_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
SHOP = {"logo_uri": "https://cdn.shop.example:8443/brand/logo.png?v=2",
        "policy_uri": "https://shop.example/privacy", "tos_uri": "https://shop.example/terms"}


def refusal(**values: Any) -> str:
    """The one message Settings refuses these values with."""
    with pytest.raises(ValidationError) as refused:
        Settings(issuer=ISSUER, dev_mode=True, **values)
    (error,) = refused.value.errors()
    return str(error["msg"]).removeprefix("Value error, ")


@pytest.fixture
def theme(tmp_path: Path) -> Path:
    (tmp_path / "static" / "img").mkdir(parents=True)
    (tmp_path / "static" / "img" / "logo.svg").write_bytes(LOGO_SVG)
    (tmp_path / "static" / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "error.html").write_text(
        '{% extends "base.html" %}{% block content %}<h1>Acme could not do that</h1>'
        "<p>{{ error }}</p>{% endblock %}")
    return tmp_path


# --- colours checked at start-up -----------------------------------------------------------


def test_the_default_look_passes_its_own_checks() -> None:
    settings = Settings(issuer=ISSUER, dev_mode=True)
    assert (settings.brand_name, settings.brand_primary_color,
            settings.brand_on_primary_color) == ("idp", "#1f5fbf", "#ffffff")
    assert settings.brand_text_color is None and settings.brand_background_color is None


def test_colours_that_fail_wcag_contrast_are_refused_with_the_ratio() -> None:
    assert refusal(brand_primary_color="#FF0") == (
        "the brand's look: IDP_BRAND_ON_PRIMARY_COLOR #ffffff on IDP_BRAND_PRIMARY_COLOR "
        "#ffff00 has a contrast of 1.07:1; button text needs at least 4.5:1 (WCAG 2.2); "
        "IDP_BRAND_PRIMARY_COLOR #ffff00 on the default white background #ffffff has a "
        "contrast of 1.07:1; a focus ring or button edge needs at least 3:1 (WCAG 2.2)")
    # #777 on white is 4.48:1, just short.
    assert refusal(brand_text_color="#777777", brand_background_color="#ffffff") == (
        "the brand's look: IDP_BRAND_TEXT_COLOR #777777 on IDP_BRAND_BACKGROUND_COLOR #ffffff "
        "has a contrast of 4.48:1; text needs at least 4.5:1 (WCAG 2.2)")
    # #767676 (4.54:1) passes as text, but not drawn lighter as secondary text; #505050 does.
    assert refusal(brand_text_color="#767676", brand_background_color="#ffffff") == (
        "the brand's look: IDP_BRAND_TEXT_COLOR #767676 at 80 % opacity (#919191) on "
        "IDP_BRAND_BACKGROUND_COLOR #ffffff has a contrast of 3.15:1; secondary text needs at "
        "least 4.5:1 (WCAG 2.2)")
    Settings(issuer=ISSUER, dev_mode=True, brand_text_color="#505050",
             brand_background_color="#ffffff")


def test_a_dark_brand_needs_its_own_error_colour() -> None:
    dark = {"brand_text_color": "#eeeeee", "brand_background_color": "#202020",
            "brand_primary_color": "#8ab4f8", "brand_on_primary_color": "#202020"}
    assert refusal(**dark) == (
        "the brand's look: IDP_BRAND_ERROR_COLOR #b00020 on IDP_BRAND_BACKGROUND_COLOR "
        "#202020 has a contrast of 2.22:1; an error message needs at least 4.5:1 (WCAG 2.2)")
    settings = Settings(issuer=ISSUER, dev_mode=True, brand_error_color="#ff8a80", **dark)
    # Form controls are drawn for a dark page; links in the primary colour read on it.
    assert brand_css(settings).splitlines()[2] == (
        ":root { color-scheme: dark; --text: #eeeeee; --background: #202020; "
        "--error: #ff8a80; --link: #8ab4f8; }")


@pytest.mark.parametrize(("values", "message"), [
    ({"brand_primary_color": "blue"},
     "Value error, 'blue' is not a colour written #rrggbb or #rgb"),
    ({"brand_background_color": "#fff; } body { display: none"},
     "Value error, '#fff; } body { display: none' is not a colour written #rrggbb or #rgb"),
    ({"brand_text_color": "#111111"},
     "Value error, the brand's look: set both IDP_BRAND_TEXT_COLOR and "
     "IDP_BRAND_BACKGROUND_COLOR, or neither"),
    ({"brand_logo": "logo.svg"},
     "Value error, the brand's look: IDP_BRAND_LOGO names a file in IDP_THEME_DIR/static/; "
     "set IDP_THEME_DIR"),
    ({"brand_support_url": "javascript:alert(1)"},
     "Value error, the brand's look: IDP_BRAND_SUPPORT_URL must be an https URL or a mailto: "
     "address"),
    ({"privacy_policy_url": "http://example.com/privacy"},
     "Value error, the brand's look: IDP_PRIVACY_POLICY_URL must be an https URL or a mailto: "
     "address"),
])
def test_a_malformed_brand_is_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(issuer=ISSUER, dev_mode=True, **values)
    assert [e["msg"] for e in refused.value.errors()] == [message]


def test_theme_files_must_exist_inside_the_theme_folder(theme: Path) -> None:
    assert refusal(theme_dir=theme, brand_logo="../templates/error.html") == (
        "the brand's look: IDP_BRAND_LOGO must be a path inside IDP_THEME_DIR/static/")
    assert refusal(theme_dir=theme, brand_favicon="missing.ico") == (
        f"the brand's look: IDP_BRAND_FAVICON: no file {theme / 'static' / 'missing.ico'}")
    assert refusal(theme_dir=theme, brand_logo="favicon.txt") == (
        "the brand's look: IDP_BRAND_LOGO must be an image (.gif, .ico, .jpeg, .jpg, .png, "
        ".svg, .webp)")
    assert refusal(theme_dir=theme / "nope") == (
        f"the brand's look: IDP_THEME_DIR {theme / 'nope'} is not a folder")


def test_the_command_line_refuses_to_start_with_an_unreadable_brand(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_DEV_MODE", "true")
    monkeypatch.setenv("IDP_BRAND_PRIMARY_COLOR", "#cccccc")
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    assert str(stopped.value).startswith(
        "idp: invalid settings: the brand's look: IDP_BRAND_ON_PRIMARY_COLOR #ffffff on "
        "IDP_BRAND_PRIMARY_COLOR #cccccc has a contrast of 1.61:1")


# --- the look on the pages -----------------------------------------------------------------


def stylesheet_url(html: str) -> str:
    match = re.search(r'<link rel="stylesheet" href="(/static/brand\.css\?v=[0-9a-f]{12})">', html)
    assert match, html
    return match.group(1)


async def test_default_pages_carry_the_name_the_colours_and_the_privacy_link(
        client: httpx.AsyncClient) -> None:
    page = await client.get("/authorize", params={"client_id": "nobody"})
    assert page.status_code == 400
    html = page.text
    assert '<span class="brand-name" dir="auto">idp</span>' in html
    assert '<a class="skip-link" href="#main">Skip to the main content</a>' in html
    assert '<main id="main" tabindex="-1">' in html
    assert '<a href="https://example.com/privacy">Privacy policy</a>' in html
    assert "Help and support" not in html and 'rel="icon"' not in html
    css = await client.get(stylesheet_url(html))
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.text == ("/* The brand's colours (IDP_BRAND_*), checked for contrast at "
                        "start-up. */\n:root { --accent: #1f5fbf; --on-accent: #ffffff; }\n")


async def test_the_operator_s_theme_logo_colours_links_and_templates(
        database_url: str, clock: FakeClock, theme: Path) -> None:
    settings = make_settings(
        database_url, theme_dir=theme, brand_name="Acme", brand_logo="img/logo.svg",
        brand_favicon="favicon.ico", brand_primary_color="#0b6e4f",
        brand_on_primary_color="#FFF", brand_text_color="#1a1a1a",
        brand_background_color="#fdf6e3", brand_support_url="mailto:help@acme.example",
        privacy_policy_url="https://acme.example/privacy")
    async with served(settings, clock) as (http, ctx):
        await make_app(ctx, name="Shop")
        error = await http.get("/authorize", params={"client_id": "nobody"})
        # The theme's error.html replaced ours; it still extends our base.html.
        assert error.status_code == 400
        assert "<h1>Acme could not do that</h1><p>invalid_client</p>" in error.text
        assert "We could not complete this request" not in error.text
        for html in (error.text, (await http.get("/account/login")).text):
            assert '<img class="brand-logo" src="/theme/img/logo.svg" alt="Acme">' in html
            assert '<link rel="icon" href="/theme/favicon.ico">' in html
            assert '<a href="mailto:help@acme.example">Help and support</a>' in html
            assert '<a href="https://acme.example/privacy">Privacy policy</a>' in html
        css = await http.get(stylesheet_url(error.text))
        assert css.text.splitlines()[1:] == [
            ":root { --accent: #0b6e4f; --on-accent: #ffffff; }",
            # Links take the text colour: the green drawn lighter in secondary text would
            # be 3.9:1 on this background.
            ":root { color-scheme: light; --text: #1a1a1a; --background: #fdf6e3; "
            "--error: #b00020; --link: #1a1a1a; }",
            "a:any-link { color: var(--link); }"]
        logo = await http.get("/theme/img/logo.svg")
        assert (logo.status_code, logo.content) == (200, LOGO_SVG)
        assert logo.headers["content-type"] == "image/svg+xml"
        assert logo.headers["content-security-policy"] == CSP  # no script runs in it
        for outside in ("/theme/../templates/error.html", "/theme/%2e%2e/templates/error.html",
                        "/theme/nothing.png"):
            assert (await http.get(outside)).status_code == 404


async def test_a_theme_changes_nothing_for_another_app_in_the_same_process(
        client: httpx.AsyncClient, database_url: str, clock: FakeClock, theme: Path) -> None:
    settings = make_settings(database_url, theme_dir=theme, brand_name="Acme")
    async with served(settings, clock) as (http, _):
        assert "Acme could not do that" in (await http.get("/authorize")).text
    plain = (await client.get("/authorize")).text
    assert "We could not complete this request" in plain and "Acme" not in plain


# --- an app's logo and policy links ---------------------------------------------------------


async def consent_page(client: httpx.AsyncClient, ctx: Context, app: App) -> httpx.Response:
    await make_user(ctx)
    page = await login(client, await authorize(client, Flow(app)))
    assert page.status_code == 200 and str(page.url).endswith("/consent"), page.url
    return page


async def test_the_consent_page_shows_the_app_s_logo_and_policies(
        client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx, name="Shop", **SHOP)
    login_page = await authorize(client, Flow(app))
    # Only the consent page admits the app's images.
    assert "img-src 'self' data:;" in login_page.headers["content-security-policy"]
    page = await consent_page(client, ctx, app)
    assert page.headers["content-security-policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' data: "
        "https://cdn.shop.example:8443; frame-ancestors 'none'; base-uri 'none'")
    assert ('<img class="client-logo" src="https://cdn.shop.example:8443/brand/logo.png?v=2" '
            'alt="Shop logo" referrerpolicy="no-referrer">') in page.text
    assert ('<a href="https://shop.example/privacy" rel="noreferrer">Privacy policy of Shop</a>'
            in page.text)
    assert '<a href="https://shop.example/terms" rel="noreferrer">Terms of Shop</a>' in page.text


async def test_without_a_logo_the_consent_page_keeps_the_strict_policy(
        client: httpx.AsyncClient, ctx: Context) -> None:
    page = await consent_page(client, ctx, await make_app(ctx, name="Shop"))
    assert page.headers["content-security-policy"] == CSP
    assert "client-logo" not in page.text and "client-links" not in page.text


@pytest.mark.parametrize("forged", [
    "https://evil.example; script-src *", "javascript:alert(1)", "https://a b.example/x.png"])
async def test_a_logo_written_past_the_rules_is_not_shown(
        client: httpx.AsyncClient, ctx: Context, forged: str) -> None:
    app = await make_app(ctx, name="Shop")
    async with ctx.db.transaction() as session:
        await session.execute(update(Client).where(Client.client_id == app.client_id)
                              .values(logo_uri=forged))
    ctx.clients.forget(app.client_id)
    page = await consent_page(client, ctx, app)
    assert page.headers["content-security-policy"] == CSP
    assert "client-logo" not in page.text


async def test_the_admin_api_registers_changes_and_refuses_display_uris(
        client: httpx.AsyncClient, ctx: Context) -> None:
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    new = {"name": "Shop", "redirect_uris": ["https://shop.example/cb"], **SHOP}
    created = await client.post("/admin/v1/clients", json=new, headers=ops)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in SHOP} == SHOP
    path = f"/admin/v1/clients/{body['client_id']}"
    changed = await client.patch(path, json={"logo_uri": None, "tos_uri": ""}, headers=ops)
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in SHOP} == {
        "logo_uri": None, "policy_uri": SHOP["policy_uri"], "tos_uri": None}
    for field, value, problem in [
            ("logo_uri", "http://cdn.shop.example/logo.png", "logo_uri must use https"),
            # Plain http on loopback is for dev mode only.
            ("policy_uri", "http://127.0.0.1:9000/privacy", "policy_uri must use https"),
            ("tos_uri", "https://user@shop.example/terms",
             "tos_uri must be an absolute URL with a host and no user information"),
            ("logo_uri", "/logo.png",
             "logo_uri must be an absolute URL with a host and no user information"),
            ("logo_uri", 'https://shop.example/"><script>',
             "logo_uri must be a URL of at most 2000 characters"),
            ("logo_uri", "https://shop.example:99999/l.png", "logo_uri has an invalid port")]:
        refused = await client.patch(path, json={field: value}, headers=ops)
        assert refused.status_code == 400, (value, refused.text)
        assert refused.json() == {"error": "invalid_request", "error_description": problem}
    too_long = await client.patch(path, json={"logo_uri": "https://a.example/" + "x" * 2000},
                                  headers=ops)
    assert too_long.status_code == 400
    assert too_long.json()["error"] == "invalid_request"
    assert (await client.get(path, headers=ops)).json()["logo_uri"] is None


async def test_dynamic_registration_keeps_and_checks_display_uris(
        database_url: str, clock: FakeClock) -> None:
    settings = make_settings(database_url, registration="open")
    async with served(settings, clock) as (http, _):
        app = {"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"]}
        registered = await http.post("/register", json={**app, **SHOP})
        assert registered.status_code == 201, registered.text
        body = registered.json()
        assert {k: body[k] for k in SHOP} == SHOP
        read = await http.get(body["registration_client_uri"].removeprefix(ISSUER),
                              headers=bearer(body["registration_access_token"]))
        assert {k: read.json()[k] for k in SHOP} == SHOP
        # RFC 7592 §2.2: a replacement without them removes them.
        replaced = await http.put(
            body["registration_client_uri"].removeprefix(ISSUER),
            headers=bearer(body["registration_access_token"]),
            json={**app, "client_id": body["client_id"], "client_secret": body["client_secret"],
                  "policy_uri": "https://partner.example/p"})
        assert replaced.status_code == 200, replaced.text
        assert "logo_uri" not in replaced.json() and "tos_uri" not in replaced.json()
        assert replaced.json()["policy_uri"] == "https://partner.example/p"
        for metadata, description in [
                ({"logo_uri": "http://partner.example/l.png"}, "logo_uri must use https"),
                ({"tos_uri": 7}, "tos_uri must be a string")]:
            refused = await http.post("/register", json={**app, **metadata})
            assert refused.status_code == 400
            assert refused.json() == {"error": "invalid_client_metadata",
                                      "error_description": description}


async def test_the_command_line_sets_and_clears_display_uris(
        ctx: Context, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(
        ctx, monkeypatch, capsys, "clients", "create", "--name", "Shop", "--redirect-uri",
        "https://shop.example/cb", "--logo-uri", SHOP["logo_uri"], "--policy-uri",
        SHOP["policy_uri"], "--tos-uri", SHOP["tos_uri"], "--json")
    assert code == 0
    created = json.loads(out)
    assert {k: created[k] for k in SHOP} == SHOP
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 created["client_id"], "--logo-uri", "", "--json")
    assert code == 0
    assert {k: json.loads(out)[k] for k in SHOP} == {**SHOP, "logo_uri": None}
    loopback = "http://127.0.0.1:9000/logo.png"
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 created["client_id"], "--logo-uri", loopback)
    assert (code, err) == (2, "idp: logo_uri must use https\n")
    # A developer's app on this machine, in dev mode.
    monkeypatch.setenv("IDP_DEV_MODE", "true")
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                 created["client_id"], "--logo-uri", loopback, "--json")
    assert code == 0
    assert json.loads(out)["logo_uri"] == loopback


async def test_links_take_the_primary_colour_where_it_reads_as_secondary_text(
        database_url: str, clock: FakeClock) -> None:
    settings = make_settings(database_url, brand_primary_color="#064e3b",
                             brand_text_color="#1a1a1a", brand_background_color="#fdf6e3")
    async with served(settings, clock) as (http, _):
        css = await http.get(stylesheet_url((await http.get("/account/login")).text))
    assert "--link: #064e3b;" in css.text
