"""The customer's language (issue 15 items 1-3), through HTTP as a browser sees it: which
language a page is in (ui_locales, the customer's pick, Accept-Language, the default), the
switcher that keeps the sign-in flow, right to left, and what discovery advertises."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import User
from tests.conftest import ISSUER, FakeClock, make_settings
from tests.helpers import (
    App,
    Flow,
    account_sign_in,
    approve,
    authorize,
    csrf_token,
    login,
    make_app,
    make_user,
    query_of,
    served,
)

LANG_COOKIE = "__Host-idp_lang"  # the issuer is https
ARABIC_LOGIN_HEADING = "<h1>سجّل الدخول للمتابعة إلى <bdi>Shop</bdi></h1>"
ARABIC_CONSENT_HEADING = "<h1>هل تسمح لـ <bdi>Shop</bdi> باستخدام حسابك؟</h1>"
ENGLISH_LOGIN_HEADING = "<h1>Sign in to continue to Shop</h1>"
# Latin words an Arabic page may show: names, addresses, and the switcher's own "English".
ALLOWED_LATIN = {"Shop", "idp", "alice", "example", "com", "PIN", "JavaScript"}


@pytest.fixture
async def shop(ctx: Context) -> App:
    return await make_app(ctx)


@pytest.fixture
async def alice(ctx: Context) -> str:
    return await make_user(ctx)


def html_lang(page: httpx.Response) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page.text)
    assert match, page.text[:300]
    return match.group(1), match.group(2)


def latin_words(html: str) -> set[str]:
    """Words in Latin letters a reader sees on the page (text, titles, labels, alternative
    text), leaving out what is marked as another language (lang="en")."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'<a [^>]*lang="en"[^>]*>.*?</a>', " ", html, flags=re.S)
    shown = re.findall(r'(?:alt|title|aria-label|placeholder)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", " ", html)
    return {w for w in re.findall(r"[A-Za-z]{2,}", unescape(" ".join([text, *shown])))
            if w not in ALLOWED_LATIN}


def switch_link(page: httpx.Response, tag: str) -> str:
    match = re.search(rf'<a href="(/language\?lang={tag}&amp;next=[^"]+)" lang="{tag}"',
                      page.text)
    assert match, page.text
    return unescape(match.group(1))


async def test_ui_locales_ar_gives_an_arabic_right_to_left_login_page(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    page = await authorize(client, Flow(shop), ui_locales="ar")
    assert page.status_code == 200
    assert html_lang(page) == ("ar", "rtl")
    assert page.headers["content-language"] == "ar"
    assert ARABIC_LOGIN_HEADING in page.text
    assert "<title>تسجيل الدخول إلى Shop</title>" in page.text
    assert '<label for="email">البريد الإلكتروني</label>' in page.text
    # Addresses stay left to right inside the Arabic page; every field keeps its purpose.
    assert re.search(r'<input id="email" name="email" type="email" autocomplete="username[^"]*"'
                     r'[^>]*dir="ltr"', page.text)
    assert 'autocomplete="current-password"' in page.text
    assert latin_words(page.text) == set()


async def test_a_wrong_password_is_answered_in_arabic_and_linked_to_the_fields(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    page = await authorize(client, Flow(shop), ui_locales="ar")
    wrong = await client.post(urlsplit(str(page.url)).path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com", "password": "no"})
    assert wrong.status_code == 200 and html_lang(wrong) == ("ar", "rtl")
    assert ('<p class="error" role="alert" id="form-error">البريد الإلكتروني أو كلمة المرور '
            'غير صحيحة.</p>') in wrong.text
    assert wrong.text.count('aria-describedby="form-error" aria-invalid="true"') == 2


async def test_the_consent_page_is_arabic_and_the_code_is_issued(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    flow = Flow(shop)
    page = await login(client, await authorize(client, flow, ui_locales="ar"))
    assert urlsplit(str(page.url)).path.endswith("/consent")
    assert html_lang(page) == ("ar", "rtl")
    assert ARABIC_CONSENT_HEADING in page.text
    assert "<legend>من أنت</legend>" in page.text
    assert "عنوان بريدك الإلكتروني وما إذا كان قد جرى التحقق منه" in page.text
    assert '<bdi dir="ltr"><strong>alice@example.com</strong></bdi>' in page.text
    assert latin_words(page.text) == set()
    done = await approve(client, page)
    assert done.status_code == 303 and query_of(done.headers["location"])["state"] == flow.state


async def test_a_picked_language_beats_accept_language(client: httpx.AsyncClient) -> None:
    switched = await client.get("/language", params={"lang": "ar", "next": "/account/login"})
    assert switched.status_code == 303 and switched.headers["location"] == "/account/login"
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith(f"{LANG_COOKIE}=ar;")
    assert all(part in cookie.lower() for part in ("secure", "httponly", "samesite=lax",
                                                  "path=/", "max-age=34560000"))
    page = await client.get("/account/login", headers={"Accept-Language": "en"})
    assert html_lang(page) == ("ar", "rtl") and page.headers["content-language"] == "ar"
    assert "<h1>تسجيل الدخول إلى حسابك</h1>" in page.text


async def test_ui_locales_beat_the_picked_language(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    await client.get("/language", params={"lang": "ar", "next": "/account/login"})
    page = await authorize(client, Flow(shop), ui_locales="en-GB ar")
    assert html_lang(page) == ("en", "ltr") and page.headers["content-language"] == "en"
    assert ENGLISH_LOGIN_HEADING in page.text


async def test_the_switcher_keeps_the_sign_in_flow(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    flow = Flow(shop)
    arabic = await authorize(client, flow, ui_locales="ar")
    login_path = urlsplit(str(arabic.url)).path
    link = switch_link(arabic, "en")
    assert link == f"/language?lang=en&next={login_path}"
    back = await client.get(link)
    assert back.status_code == 303 and back.headers["location"] == login_path
    english = await client.get(login_path)
    assert html_lang(english) == ("en", "ltr") and ENGLISH_LOGIN_HEADING in english.text
    # The same interaction goes on, in the language picked (over the app's ui_locales).
    consent = await login(client, english)
    assert urlsplit(str(consent.url)).path == login_path.replace("/login", "/consent")
    assert "<h1>Allow Shop to use your account?</h1>" in consent.text
    done = await approve(client, consent)
    assert query_of(done.headers["location"])["state"] == flow.state


async def test_the_switcher_returns_to_a_page_with_its_query(client: httpx.AsyncClient) -> None:
    page = await client.get("/device", params={"user_code": "BCDF-GHJK"})
    link = switch_link(page, "ar")
    back = await client.get(link)
    assert back.headers["location"] == "/device?user_code=BCDF-GHJK"
    again = await client.get(back.headers["location"])
    assert html_lang(again) == ("ar", "rtl")
    assert re.search(r'<input id="user_code" name="user_code" type="text" value="BCDF-GHJK" '
                     r'dir="ltr"', again.text)


@pytest.mark.parametrize(("header", "expected"), [
    ("fr-CA, ar-EG;q=0.8, en;q=0.5", "ar"),
    ("ar-SA", "ar"),
    ("en-US,en;q=0.9,ar;q=0.8", "en"),
    ("ar;q=0, en-GB;q=0.3", "en"),
    ("de, fr;q=0.9", "en"),
    ("*", "en"),
    ("", "en"),
    ("ar, " + "x" * 5000, "ar"),
    ("ar;q=oops", "en"),
    (",;;,=,q", "en"),
])
async def test_accept_language_is_negotiated(client: httpx.AsyncClient, header: str,
                                             expected: str) -> None:
    page = await client.get("/account/login", headers={"Accept-Language": header})
    assert page.status_code == 200
    assert html_lang(page)[0] == expected and page.headers["content-language"] == expected


async def test_unsupported_languages_fall_back(client: httpx.AsyncClient, shop: App,
                                               alice: str) -> None:
    # ui_locales naming no language of ours: the browser's language decides.
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(ui_locales="fr de-AT"),
                                headers={"Accept-Language": "ar"})
    page = await client.get(response.headers["location"], headers={"Accept-Language": "ar"})
    assert html_lang(page) == ("ar", "rtl")
    response = await client.get("/authorize", params=Flow(shop).params(ui_locales="fr"))
    page = await client.get(response.headers["location"])
    assert html_lang(page) == ("en", "ltr")
    # A language without a catalog is not remembered; a forged cookie is ignored.
    refused = await client.get("/language", params={"lang": "fr", "next": "/account/login"})
    assert refused.status_code == 303 and "set-cookie" not in refused.headers
    client.cookies.set(LANG_COOKIE, "fr")
    assert html_lang(await client.get("/account/login")) == ("en", "ltr")
    client.cookies.set(LANG_COOKIE, "<script>")
    page = await client.get("/account/login", headers={"Accept-Language": "ar"})
    assert html_lang(page) == ("ar", "rtl") and "<script>" not in page.text


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "evil", "",
    "/account\r\nSet-Cookie: x=1", "/" + "a" * 3000,
])
async def test_the_switcher_never_leaves_the_site(client: httpx.AsyncClient,
                                                  target: str) -> None:
    response = await client.get("/language", params={"lang": "ar", "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/account"


async def _locale_of(ctx: Context, email: str) -> str | None:
    async with ctx.db.transaction() as session:
        return await session.scalar(select(User.ui_locale).where(User.email == email))


async def test_a_signed_in_pick_is_kept_on_the_account(
        ctx: Context, alice: str, new_browser: Any) -> None:
    phone = new_browser()
    await account_sign_in(phone)
    # A link another site planted changes this browser only, never the account.
    planted = await phone.get("/language", params={"lang": "ar", "next": "/account"},
                              headers={"Sec-Fetch-Site": "cross-site"})
    assert planted.status_code == 303 and LANG_COOKIE in planted.headers["set-cookie"]
    assert await _locale_of(ctx, "alice@example.com") is None
    picked = await phone.get("/language", params={"lang": "ar", "next": "/account"},
                             headers={"Sec-Fetch-Site": "same-origin"})
    assert picked.status_code == 303
    assert await _locale_of(ctx, "alice@example.com") == "ar"
    # Another browser, signed in to the account, gets the account's language and keeps it.
    laptop = new_browser()
    await account_sign_in(laptop)
    page = await laptop.get("/account/login", headers={"Accept-Language": "en"})
    assert html_lang(page) == ("ar", "rtl")
    assert page.headers["set-cookie"].startswith(f"{LANG_COOKIE}=ar;")
    assert laptop.cookies.get(LANG_COOKIE) == "ar"
    # Without Fetch Metadata, a link on our own pages (their Referer) may change it too.
    await phone.get("/language", params={"lang": "en", "next": "/account"},
                    headers={"Referer": f"{ISSUER}/account/login"})
    assert await _locale_of(ctx, "alice@example.com") == "en"
    await phone.get("/language", params={"lang": "ar", "next": "/account"},
                    headers={"Referer": "https://evil.example/"})
    assert await _locale_of(ctx, "alice@example.com") == "en"


async def test_discovery_lists_the_languages_with_a_catalog(client: httpx.AsyncClient) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        metadata = (await client.get(path)).json()
        assert metadata["ui_locales_supported"] == ["en", "ar"]
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert metadata["claims_locales_supported"] == ["en", "ar"]


async def test_the_operator_can_offer_fewer_languages_and_another_default(
        settings: Settings, clock: FakeClock, ctx: Context) -> None:
    shop = await make_app(ctx)
    async with served(settings, clock, ui_locales_supported=("en",)) as (http, _):
        metadata = (await http.get("/.well-known/openid-configuration")).json()
        assert metadata["ui_locales_supported"] == ["en"]
        page = await authorize(http, Flow(shop), ui_locales="ar")
        assert html_lang(page) == ("en", "ltr") and 'class="languages"' not in page.text
    async with served(settings, clock, default_locale="ar") as (http, _):
        metadata = (await http.get("/.well-known/openid-configuration")).json()
        assert metadata["ui_locales_supported"] == ["ar", "en"]
        assert html_lang(await http.get("/account/login")) == ("ar", "rtl")
        page = await http.get("/account/login", headers={"Accept-Language": "en"})
        assert html_lang(page) == ("en", "ltr")


@pytest.mark.parametrize("overrides", [
    {"default_locale": "fr"}, {"ui_locales_supported": ("en", "xx")},
    {"ui_locales_supported": ("ar",), "default_locale": "en"},
])
def test_languages_without_a_catalog_are_refused_at_start_up(
        database_url: str, overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make_settings(database_url, **overrides)


async def test_error_pages_speak_the_customer_language_and_apis_stay_english(
        client: httpx.AsyncClient, shop: App) -> None:
    response = await client.get("/authorize", params={
        **Flow(shop).params(ui_locales="ar"), "client_id": "unknown-client"})
    assert response.status_code == 400 and html_lang(response) == ("ar", "rtl")
    assert "<p>التطبيق الذي أرسلك إلى هنا غير معروف لدينا.</p>" in response.text
    assert '<span dir="ltr"><code>invalid_client</code></span>' in response.text
    assert latin_words(response.text) == {"invalid", "client"}
    # A form refused as forged: its (customer's) description is translated.
    forged = await client.post("/account/login", data={"csrf_token": "x", "email": "a@b.c",
                                                       "password": "p"},
                               headers={"Accept-Language": "ar"})
    assert forged.status_code == 403
    assert "<p>انتهت صلاحية النموذج. ارجع وحاول مرة أخرى.</p>" in forged.text
    # The protocol's answers stay English on the wire, and name no language.
    token = await client.post("/token", data={"grant_type": "authorization_code"},
                              headers={"Accept-Language": "ar"})
    assert token.json()["error"] == "invalid_client"
    assert token.json()["error_description"].isascii()
    assert "content-language" not in token.headers
    metadata = await client.get("/.well-known/openid-configuration",
                                headers={"Accept-Language": "ar"})
    assert "content-language" not in metadata.headers


async def test_plural_forms_follow_the_language(client: httpx.AsyncClient, ctx: Context,
                                                alice: str) -> None:
    """Arabic has six plural forms: the 429 page's wait, in seconds."""
    for _ in range(30):
        page = await client.get("/account/login", headers={"Accept-Language": "ar"})
        held = await client.post("/account/login", headers={"Accept-Language": "ar"}, data={
            "csrf_token": csrf_token(page.text), "email": "alice@example.com",
            "password": "wrong"})
        if held.status_code == 429:
            break
    assert held.status_code == 429
    seconds = int(held.headers["retry-after"])
    words = {1: "ثانية واحدة", 2: "ثانيتين"}.get(seconds) or (
        f"{seconds} ثوانٍ" if 3 <= seconds % 100 <= 10 else f"{seconds} ثانية")
    assert f"محاولات تسجيل دخول كثيرة جدًا. انتظر {words} ثم حاول مرة أخرى." in held.text


@pytest.mark.parametrize(("path", "status"), [
    ("/account/login", 200), ("/account/forgot", 200), ("/account/reset?token=no-such", 400),
    ("/signup?token=no-such-link", 400), ("/device", 200), ("/device/done", 200),
    ("/device/done?result=approved", 200), ("/logout", 200),
])
async def test_arabic_pages_have_no_english_left(client: httpx.AsyncClient, path: str,
                                                 status: int) -> None:
    page = await client.get(path, headers={"Accept-Language": "ar"})
    assert page.status_code == status, page.text
    assert html_lang(page) == ("ar", "rtl") and page.headers["content-language"] == "ar"
    assert latin_words(page.text) == set()


async def test_the_register_and_reauth_pages_are_arabic(
        client: httpx.AsyncClient, shop: App, alice: str) -> None:
    login_page = await authorize(client, Flow(shop), ui_locales="ar")
    register = await client.get(urlsplit(str(login_page.url)).path.replace("/login",
                                                                           "/register"))
    assert html_lang(register) == ("ar", "rtl") and latin_words(register.text) == set()
    assert '<input id="email" name="email" type="email" autocomplete="email"' in register.text
    await account_sign_in(client)
    reauth = await client.get("/account/reauth", headers={"Accept-Language": "ar"})
    assert html_lang(reauth) == ("ar", "rtl") and latin_words(reauth.text) == set()
    assert ('<p>قبل أن تغيّر طريقة تسجيل دخولك، أكّد أنك <strong dir="ltr">'
            'alice@example.com</strong>.</p>') in reauth.text
