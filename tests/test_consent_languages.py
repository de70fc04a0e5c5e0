"""Consent in the customer's language (issue 15 item 4): purposes, scopes and data
categories with words per language set by the operator (admin API and CLI), the default
language's words when a language has none, and the ledger and receipts recording the
language and the exact words shown."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from idp.services.accounts import admin
from idp.services.consent import purposes
from idp.services.context import Context
from tests.helpers import (
    App,
    Flow,
    authorize,
    csrf_token,
    login,
    make_app,
    make_user,
    query_of,
    run_cli,
)

BASE = "/admin/v1"
OFFERS_AR = {"title": "عروض بالبريد الإلكتروني",
             "description": "نرسل إليك بالبريد الإلكتروني عروضًا نظن أنها ستعجبك."}
ORDERS_AR = {"title": "إشعارات الطلبات",
             "description": "نراسلك بشأن الطلبات التي تقدّمها."}


@pytest.fixture
async def shop(ctx: Context) -> App:
    await purposes.create_purpose(
        ctx, purpose_id="order_updates", title="Order updates",
        description="We email you about the orders you place.",
        data_categories=["identity"], legal_basis="contract")
    await purposes.create_purpose(
        ctx, purpose_id="marketing_email", title="Offers by email",
        description="We email you offers we think you will like.",
        data_categories=["identity", "behavioral"])
    app = await make_app(ctx, grant_types=["authorization_code"],
                         scopes=["openid", "profile", "email"])
    await purposes.set_client_purposes(ctx, app.client_id, {
        "order_updates": True, "marketing_email": False})
    await make_user(ctx)
    return app


async def _bearer(client: httpx.AsyncClient, ctx: Context, scopes: list[str]
                  ) -> dict[str, str]:
    new = await admin.create_client(ctx, name="Ops", redirect_uris=[],
                                    grant_types=["client_credentials"], scopes=scopes)
    token = await client.post("/token", data={"grant_type": "client_credentials"},
                              auth=(new.client.client_id, new.client_secret or ""))
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@pytest.fixture
async def ops(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    return await _bearer(client, ctx, ["admin:read", "admin:write"])


async def consent_page(browser: httpx.AsyncClient, shop: App, flow: Flow | None = None,
                       **extra: str) -> httpx.Response:
    page = await login(browser, await authorize(browser, flow or Flow(shop), **extra))
    assert urlsplit(str(page.url)).path.endswith("/consent"), page.text
    return page


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    """The consent form's hidden fields: its CSRF token, language and texts' digest."""
    form = page.text.split('id="consent-form">')[1].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


async def allow(browser: httpx.AsyncClient, page: httpx.Response,
                purposes_ticked: tuple[str, ...] = ("marketing_email",)) -> httpx.Response:
    """Allow, posting the page's form as a browser does (its hidden language and digest)."""
    fields = hidden_fields(page)
    data: dict[str, Any] = {**fields, "decision": "allow", "purpose": list(purposes_ticked)}
    return await browser.post(urlsplit(str(page.url)).path, data=data)


async def last_receipt(client: httpx.AsyncClient, ops: dict[str, str]) -> dict[str, Any]:
    chain = (await client.get(f"{BASE}/ledger", headers=ops)).json()
    entry_id = chain[-1]["entry_id"]
    receipt = await client.get(f"{BASE}/ledger/{entry_id}/receipt", headers=ops)
    assert receipt.status_code == 200, receipt.text
    body: dict[str, Any] = receipt.json()
    return body


def digest(*texts: str) -> str:
    """SHA-256 over the texts, each prefixed with its length (4 bytes, big-endian)."""
    hasher = hashlib.sha256()
    for text in texts:
        data = text.encode()
        hasher.update(len(data).to_bytes(4, "big") + data)
    return hasher.hexdigest()


def by_id(receipt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["purposeId"]: p for p in receipt["services"][0]["purposes"]}


async def test_an_arabic_purpose_text_is_shown_and_recorded_in_the_receipt(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str]) -> None:
    for purpose_id, words in (("marketing_email", OFFERS_AR), ("order_updates", ORDERS_AR)):
        put = await client.put(f"{BASE}/consent-texts/purpose/{purpose_id}/ar", json=words,
                               headers=ops)
        assert put.status_code == 200, put.text
        assert put.json() == {"kind": "purpose", "key": purpose_id, "locale": "ar", **words,
                              "purpose_version": 1, "version": 1,
                              "updated_at": put.json()["updated_at"]}
    page = await consent_page(client, shop, ui_locales="ar")
    assert (f'<label for="purpose-marketing_email"><span>{OFFERS_AR["title"]}</span> '
            f'<span class="muted">(اختياري)</span></label>') in page.text
    assert f'<span>{OFFERS_AR["description"]}</span>' in page.text
    assert (f'<strong>{ORDERS_AR["title"]}</strong> <span class="muted">(مطلوب لاستخدام '
            f'التطبيق)</span>') in page.text
    assert 'lang="en"' not in page.text.split("<main")[1]
    done = await allow(client, page)
    assert done.status_code == 303 and "code" in query_of(done.headers["location"])
    receipt = await last_receipt(client, ops)
    assert receipt["language"] == "ar"
    offers = by_id(receipt)["marketing_email"]
    assert (offers["purpose"], offers["purposeDescription"]) == (
        OFFERS_AR["title"], OFFERS_AR["description"])
    assert offers["purposeLanguage"] == "ar" and offers["purposeTextVersion"] == 1
    assert offers["purposeTextDigest"] == digest(OFFERS_AR["title"],
                                                 OFFERS_AR["description"])
    assert offers["consentGiven"] is True and offers["purposeVersion"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", receipt["event"]["textsDigest"])


async def test_without_arabic_words_the_default_language_is_shown_and_recorded(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str]) -> None:
    await client.put(f"{BASE}/consent-texts/purpose/marketing_email/ar", json=OFFERS_AR,
                     headers=ops)
    page = await consent_page(client, shop, ui_locales="ar")
    # The English words, marked as English inside the Arabic page (WCAG 3.1.2).
    assert ('<strong lang="en" dir="ltr">Order updates</strong> <span class="muted">'
            '(مطلوب لاستخدام التطبيق)</span>') in page.text
    assert ('<span lang="en" dir="ltr">We email you about the orders you place.</span>'
            in page.text)
    await allow(client, page, ())
    receipt = await last_receipt(client, ops)
    orders, offers = by_id(receipt)["order_updates"], by_id(receipt)["marketing_email"]
    assert (orders["purpose"], orders["purposeLanguage"]) == ("Order updates", "en")
    assert orders["purposeTextDigest"] == digest("Order updates",
                                                 "We email you about the orders you place.")
    assert (offers["purpose"], offers["purposeLanguage"]) == (OFFERS_AR["title"], "ar")
    assert offers["consentGiven"] is False
    assert receipt["language"] == "ar"


async def test_a_material_change_makes_a_translation_stale_until_it_is_given_again(
        client: httpx.AsyncClient, ctx: Context, shop: App, ops: dict[str, str],
        new_browser: Any) -> None:
    await client.put(f"{BASE}/consent-texts/purpose/marketing_email/ar", json=OFFERS_AR,
                     headers=ops)
    changed = await client.patch(f"{BASE}/purposes/marketing_email", headers=ops, json={
        "description": "We email you offers, news and surveys."})
    assert changed.json()["version"] == 2 and changed.json()["text_version"] == 2
    # The Arabic words say version 1: never agreed to as version 2's.
    page = await consent_page(new_browser(), shop, ui_locales="ar")
    assert '<span lang="en" dir="ltr">Offers by email</span>' in page.text
    assert OFFERS_AR["title"] not in page.text
    newer = {**OFFERS_AR, "description": "نرسل إليك عروضًا وأخبارًا واستطلاعات."}
    put = await client.put(f"{BASE}/consent-texts/purpose/marketing_email/ar", json=newer,
                           headers=ops)
    assert (put.json()["purpose_version"], put.json()["version"]) == (2, 2)
    browser = new_browser()
    page = await consent_page(browser, shop, ui_locales="ar")
    assert f"<span>{newer['description']}</span>" in page.text
    await allow(browser, page)
    offers = by_id(await last_receipt(client, ops))["marketing_email"]
    assert (offers["purposeVersion"], offers["purposeLanguage"],
            offers["purposeTextVersion"]) == (2, "ar", 2)
    # Setting the same words again changes nothing, not even their version.
    again = await client.put(f"{BASE}/consent-texts/purpose/marketing_email/ar", json=newer,
                             headers=ops)
    assert again.json()["version"] == 2


async def test_a_wording_fix_in_the_default_language_has_its_own_text_version(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str]) -> None:
    fixed = await client.patch(f"{BASE}/purposes/marketing_email", headers=ops, json={
        "title": "Offers by e-mail", "material": False})
    assert (fixed.json()["version"], fixed.json()["text_version"]) == (1, 2)
    await allow(client, await consent_page(client, shop))
    receipt = await last_receipt(client, ops)
    offers = by_id(receipt)["marketing_email"]
    assert receipt["language"] == "en"
    assert (offers["purpose"], offers["purposeLanguage"], offers["purposeTextVersion"],
            offers["purposeVersion"]) == ("Offers by e-mail", "en", 2, 1)


async def test_scope_and_category_words_are_set_per_language_from_the_command_line(
        client: httpx.AsyncClient, ctx: Context, shop: App, new_browser: Any,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "purposes", "text", "--kind",
                                 "scope", "--key", "email", "--locale", "ar",
                                 "--description", "بريدك الإلكتروني فقط")
    assert code == 0 and '"version": 1' in out and "بريدك الإلكتروني فقط" in out
    code, _, _ = await run_cli(ctx, monkeypatch, capsys, "purposes", "text", "--kind",
                               "category", "--key", "identity", "--locale", "ar",
                               "--title", "هويتك")
    assert code == 0
    code, _, _ = await run_cli(ctx, monkeypatch, capsys, "purposes", "text", "--kind",
                               "scope", "--key", "email", "--locale", "en",
                               "--description", "Your e-mail address, nothing else")
    assert code == 0
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "purposes", "texts")
    assert code == 0 and out.count('"kind"') == 3
    page = await consent_page(new_browser(), shop, ui_locales="ar")
    assert "<legend>هويتك</legend>" in page.text
    assert '<li data-scope="email">بريدك الإلكتروني فقط</li>' in page.text
    page = await consent_page(new_browser(), shop)
    assert '<li data-scope="email">Your e-mail address, nothing else</li>' in page.text
    assert "<legend>Who you are</legend>" in page.text
    code, _, _ = await run_cli(ctx, monkeypatch, capsys, "purposes", "text-remove", "--kind",
                               "scope", "--key", "email", "--locale", "ar")
    assert code == 0
    page = await consent_page(new_browser(), shop, ui_locales="ar")
    assert ('<li data-scope="email">عنوان بريدك الإلكتروني وما إذا كان قد جرى التحقق '
            'منه</li>') in page.text
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "purposes", "text", "--key",
                                 "marketing_email", "--locale", "en", "--title", "x",
                                 "--description", "y")
    assert code == 2 and "default language" in err


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("purpose/marketing_email/fr", OFFERS_AR, 400, "invalid_request"),
    ("purpose/marketing_email/en", OFFERS_AR, 400, "invalid_request"),
    ("purpose/marketing_email/ar", {"title": "عروض"}, 400, "invalid_request"),
    ("purpose/no_such_purpose/ar", OFFERS_AR, 404, "not_found"),
    ("scope/email/ar", {"title": "x", "description": "y"}, 400, "invalid_request"),
    ("scope/Not A Scope/ar", {"description": "y"}, 400, "invalid_request"),
    ("category/feelings/ar", {"title": "x"}, 400, "invalid_request"),
    ("category/identity/ar", {"description": "x"}, 400, "invalid_request"),
    ("colour/identity/ar", {"title": "x"}, 400, "invalid_request"),
    ("category/identity/ar", {"title": "x" * 201}, 400, "invalid_request"),
    ("category/identity/ar", {"title": "x", "extra": 1}, 400, "invalid_request"),
])
async def test_texts_that_break_a_rule_are_refused(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str], path: str,
        body: dict[str, Any], status: int, error: str) -> None:
    response = await client.put(f"{BASE}/consent-texts/{path}", json=body, headers=ops)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert (await client.get(f"{BASE}/consent-texts", headers=ops)).json() == []


async def test_only_writers_set_texts_and_removal_shows_the_default_again(
        client: httpx.AsyncClient, ctx: Context, shop: App, ops: dict[str, str]) -> None:
    path = f"{BASE}/consent-texts/purpose/marketing_email/ar"
    assert (await client.put(path, json=OFFERS_AR)).status_code == 401
    reader = await _bearer(client, ctx, ["admin:read"])
    assert (await client.put(path, json=OFFERS_AR, headers=reader)).status_code == 403
    assert (await client.put(path, json=OFFERS_AR, headers=ops)).status_code == 200
    listed = await client.get(f"{BASE}/consent-texts", params={"kind": "purpose"},
                              headers=reader)
    assert [(t["key"], t["locale"]) for t in listed.json()] == [("marketing_email", "ar")]
    assert (await client.delete(path, headers=reader)).status_code == 403
    assert (await client.delete(path, headers=ops)).status_code == 204
    assert (await client.delete(path, headers=ops)).status_code == 404
    page = await consent_page(client, shop, ui_locales="ar")
    assert '<span lang="en" dir="ltr">Offers by email</span>' in page.text
    events = (await client.get(f"{BASE}/audit-events", params={"target_id": "marketing_email:ar"},
                               headers=ops)).json()
    assert [e["action"] for e in events] == ["consent_text.remove", "consent_text.set"]


async def test_words_changed_while_reading_are_shown_again_before_they_count(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str]) -> None:
    flow = Flow(shop)
    page = await consent_page(client, shop, flow, ui_locales="ar")
    reworded = {**OFFERS_AR, "description": "نرسل إليك عروضًا أقل."}
    await client.put(f"{BASE}/consent-texts/purpose/marketing_email/ar", json=reworded,
                     headers=ops)
    again = await allow(client, page)
    assert again.status_code == 200
    assert ('<p class="error" role="alert" id="form-error">تغيّرت الصياغة أثناء قراءتك. '
            'اقرأها مرة أخرى ثم أجب.</p>') in again.text
    assert f"<span>{reworded['description']}</span>" in again.text
    assert (await client.get(f"{BASE}/ledger", headers=ops)).json() == []
    done = await allow(client, again)
    assert done.status_code == 303
    assert query_of(done.headers["location"])["state"] == flow.state
    assert by_id(await last_receipt(client, ops))["marketing_email"][
        "purposeDescription"] == reworded["description"]


async def test_a_forged_language_on_the_answer_is_not_recorded(
        client: httpx.AsyncClient, shop: App, ops: dict[str, str]) -> None:
    page = await consent_page(client, shop)
    fields = hidden_fields(page)
    # Another language than the page's: its words are not those shown, so nothing counts.
    response = await client.post(urlsplit(str(page.url)).path, data={
        **fields, "lang": "ar", "decision": "allow"})
    assert response.status_code == 200 and 'role="alert"' in response.text
    assert (await client.get(f"{BASE}/ledger", headers=ops)).json() == []
    # A language we do not have is the default's words: the page's, so it counts.
    response = await client.post(urlsplit(str(page.url)).path, data={
        "csrf_token": csrf_token(page.text), "texts": fields["texts"], "lang": "xx" * 40,
        "decision": "allow"})
    assert response.status_code == 303
    assert (await last_receipt(client, ops))["language"] == "en"
