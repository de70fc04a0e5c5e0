"""Downloading one's data (GDPR Art. 15 and 20; CCPA/CPRA right to know; security.md §7
PRIV-04) from the account center and with `idp users export`: a versioned JSON document with
every section, never a secret, only for the signed-in customer, after a recent sign-in, and at
most EXPORTS_PER_WINDOW times an hour. Google is the fake of tests/fakes."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, text

from idp.crypto.handles import digest
from idp.services.consent import purposes
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.signin.throttle import EXPORT_WINDOW_SECONDS, EXPORTS_PER_WINDOW
from idp.store.models import (
    AuthorizationCode,
    BrowserSession,
    Client,
    FederationState,
    Identity,
    Interaction,
    LedgerEntry,
    Picture,
    RefreshToken,
    SigningKey,
    Upstream,
    User,
)
from tests.conftest import ISSUER, FakeClock
from tests.fakes.google import FakeGoogle
from tests.flows import back_from_upstream, prove_account, start_upstream
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    account_sign_in,
    approve,
    csrf_token,
    get_code,
    make_app,
    make_user,
    offered_imports,
    query_of,
    redeem,
    run_cli,
)
from tests.helpers import unverified_claims as claims
from tests.upstreams import GOOGLE_SECRET, Browsers

EMAIL = "alice@gmail.com"
BOB = "bob@example.com"
SESSION = "__Host-idp_session"
OFFERS = "We send you offers by email."


# --- driving the browser -----------------------------------------------------------------


async def make_shop(ctx: Context) -> App:
    """A confidential app that keeps refresh tokens, with a required and a marketing purpose."""
    await purposes.create_purpose(
        ctx, purpose_id="order_updates", title="Order updates",
        description="We tell you where your order is.", data_categories=["identity"],
        legal_basis="contract")
    await purposes.create_purpose(
        ctx, purpose_id="marketing_email", title="Offers by email", description=OFFERS,
        data_categories=["identity", "behavioral"])
    shop = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          long_sessions=True)
    await purposes.set_client_purposes(ctx, shop.client_id, {
        "order_updates": True, "marketing_email": False})
    return shop


async def link_google(browser: httpx.AsyncClient, app: Any, shop: App) -> dict[str, Any]:
    """The customer signs in to the shop with Google, proves the password account of the
    same address (requirement 19), saves every attribute Google offers, and the shop redeems
    its code; returns the shop's tokens."""
    flow, start = await start_upstream(browser, shop, "google")
    prompt = await back_from_upstream(browser, app, start, "google")
    assert "already uses this email address" in prompt.text, prompt.text
    consent = await prove_account(browser, prompt, EMAIL)
    assert urlsplit(str(consent.url)).path.endswith("/consent"), consent.text
    assert "name" in offered_imports(consent.text)
    done = await approve(browser, consent, offered_imports(consent.text))
    assert done.status_code == 303, done.text
    tokens = (await redeem(browser, flow, query_of(done.headers["location"])["code"])).json()
    assert "refresh_token" in tokens
    return dict(tokens)


async def allow_offers(browser: httpx.AsyncClient, shop: App) -> None:
    """A consent change in the account center: the optional marketing purpose is allowed."""
    page = await browser.get(f"/account/apps/{shop.client_id}")
    changed = await browser.post(f"/account/apps/{shop.client_id}", data={
        "csrf_token": csrf_token(page.text), "purpose": ["marketing_email"]})
    assert changed.status_code == 303


async def download(browser: httpx.AsyncClient) -> httpx.Response:
    page = await browser.get("/account/export")
    assert page.status_code == 200, page.text
    return await browser.post("/account/export", data={"csrf_token": csrf_token(page.text)})


async def secret_columns(ctx: Context) -> list[str]:
    """Every stored secret, digest or sealed value: none may appear in an export."""
    columns = (User.password_hash, BrowserSession.id_hash, AuthorizationCode.code_hash,
               RefreshToken.token_hash, Client.secret_hash, Identity.refresh_token_encrypted,
               Identity.refresh_token_digest, Interaction.browser_hash,
               FederationState.state_hash, FederationState.transaction_encrypted,
               Upstream.secrets_encrypted, SigningKey.private_jwk_encrypted)
    found: list[str] = []
    async with ctx.db.transaction() as session:
        for column in columns:
            found += [v for v in await session.scalars(select(column)) if v]
    return found


# --- the tests -----------------------------------------------------------------------------


async def test_the_export_holds_every_section_and_no_secret(
        browser: httpx.AsyncClient, app: Any, ctx: Context, google: FakeGoogle,
        new_browser: Browsers, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """PRIV-04: profile with each imported attribute's source and time, the password as a
    yes/no, the Google identity (issuer, subject, imported attributes), the app with the sub it
    sees and the purposes with versions, the full consent history, the live session, security
    events and copied pictures. No password hash, token, token digest, sealed upstream token,
    cookie or client secret anywhere in the file; nothing of another customer. The operator's
    `idp users export` gives the same document."""
    shop = await make_shop(ctx)
    user_id = await make_user(ctx, email=EMAIL)
    tokens = await link_google(browser, app, shop)
    await allow_offers(browser, shop)
    # A copied picture (the Facebook flow copies them) and a security event of each customer
    # (besides the identity_linked event the link above recorded).
    async with ctx.db.transaction() as session:
        security_events.record(session, security_events.UPSTREAM_SUBJECT_CHANGED, user_id,
                               ctx.now(), alias="google")
        session.add(Picture(id="p" * 32, user_id=user_id, content_type="image/png",
                            data=b"\x89PNG\r\n\x1a\n", source="facebook", created_at=ctx.now()))
    # Another customer of the same shop, in another browser.
    other = new_browser()
    bob_id = await make_user(ctx, email=BOB, name="Bob Other")
    async with ctx.db.transaction() as session:
        security_events.record(session, security_events.IDENTITY_UNLINKED, bob_id, ctx.now(),
                               alias="bobs-provider")
    bob_flow = Flow(shop)
    bob_tokens = (await redeem(other, bob_flow, await get_code(other, bob_flow, BOB))).json()

    privacy = await browser.get("/account/privacy")
    assert '<a href="/account/export">Download my data</a>' in privacy.text
    response = await download(browser)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    day = response.json()["exported_at"][:10]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="idp-account-{day}.json"')
    document = response.json()
    assert document["format"] == "idp-account-export/1"
    assert document["issuer"] == ISSUER
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", document["exported_at"])

    account = document["account"]
    assert (account["sub"], account["email"], account["email_verified"]) == (
        user_id, EMAIL, True)
    assert account["profile"]["name"]["value"] == "Alice Gmail"
    assert account["profile"]["name"]["source"] == "google"
    assert account["profile"]["name"]["imported_at"] == account["updated_at"]

    methods = document["sign_in_methods"]
    assert methods["password"] is True
    [identity] = methods["identities"]
    person = google.users["gmail"]
    assert (identity["provider"], identity["namespace"], identity["subject"],
            identity["email"], identity["email_verified"], identity["status"]) == (
        "google", google.issuer, person.sub, EMAIL, True, "active")
    assert identity["imported_attributes"]["name"]["value"] == "Alice Gmail"
    assert identity["imported_attributes"]["name"]["source"] == "google"
    assert identity["import_choices"]["name"] is True

    [shop_entry] = document["apps"]
    assert (shop_entry["client_id"], shop_entry["name"]) == (shop.client_id, "Shop")
    # OIDC Core §8: the sub the app sees is the one in its ID token.
    assert shop_entry["sub"] == claims(tokens["id_token"])["sub"] == user_id
    assert "openid" in shop_entry["scopes"]
    assert {(p["id"], p["choice"], p["version"]) for p in shop_entry["purposes"]} == {
        ("order_updates", "granted", 1), ("marketing_email", "granted", 1)}

    history = document["consent_history"]
    assert [entry["action"] for entry in history] == ["grant", "change"]
    assert history[1]["summary"] == "allowed Offers by email"
    assert all(e["client_id"] == shop.client_id and e["app"] == "Shop" for e in history)
    assert not any(e["payload_erased"] for e in history)
    assert history[1]["payload"]["after"]["purposes"] == [
        {"id": "order_updates", "version": 1}, {"id": "marketing_email", "version": 1}]

    async with ctx.db.transaction() as session:
        live = await session.scalar(select(BrowserSession).where(
            BrowserSession.id_hash == digest(browser.cookies[SESSION])))
    assert live is not None
    [signed_in] = document["sessions"]
    assert signed_in["sid"] == live.sid and signed_in["amr"] == list(live.amr)
    assert {"auth_time", "acr", "created_at", "expires_at"} <= signed_in.keys()
    # Sign-ins are security events too (issue 12 item 8); those of a provider name it.
    assert sorted((e["kind"], e["detail"]["alias"]) for e in document["security_events"]
                  if "alias" in e["detail"]) == [
        ("identity_linked", "google"), ("upstream_subject_changed", "google")]
    assert {"alias": "google", "via": "password proof"} in [
        e["detail"] for e in document["security_events"]]
    assert [p["url"] for p in document["pictures"]] == [f"{ISSUER}/pictures/{'p' * 32}"]

    # No secret, in any form; nothing of Bob.
    raw = response.text
    # The token responses' secrets, not their other members (`expires_in` 600 turned up in a
    # random id now and then).
    issued = [answer[name] for answer in (tokens, bob_tokens)
              for name in ("access_token", "refresh_token", "id_token") if name in answer]
    secrets = [PASSWORD, browser.cookies[SESSION], shop.client_secret or "",
               GOOGLE_SECRET, *google.issued, *issued, *await secret_columns(ctx)]
    for secret in secrets:
        assert str(secret) not in raw
    for needle in (BOB, bob_id, "Bob Other", "bobs-provider"):
        assert needle not in raw

    # The operator's export, by email to stdout and by id to a file, is the same document.
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "users", "export", EMAIL)
    assert code == 0
    assert {**json.loads(out), "exported_at": None} == {**document, "exported_at": None}
    target = tmp_path / "dsar.json"
    code, _, _ = await run_cli(ctx, monkeypatch, capsys, "users", "export", user_id,
                               "--output", str(target))
    assert code == 0 and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert {**json.loads(target.read_text()), "exported_at": None} == {
        **document, "exported_at": None}
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "users", "export", "nobody@x.test")
    assert (code, out, err.strip()) == (2, "", "idp: no such account")


async def test_an_erased_consent_payload_says_so(client: httpx.AsyncClient, ctx: Context,
                                                 new_browser: Browsers) -> None:
    """PRIV-07: an entry whose payload was erased stays in the history, marked as erased."""
    shop = await make_shop(ctx)
    await make_user(ctx, email=EMAIL)
    browser = new_browser()
    flow = Flow(shop)
    await redeem(browser, flow, await get_code(browser, flow, EMAIL))
    async with ctx.db.transaction() as session:
        await session.execute(text("UPDATE consent_ledger SET payload = NULL"))
    [entry] = (await download(browser)).json()["consent_history"]
    assert (entry["action"], entry["app"], entry["payload_erased"], entry["payload"],
            entry["summary"]) == ("grant", shop.client_id, True, None, None)
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(LedgerEntry.entry_id)) == entry["entry_id"]


async def test_a_stale_sign_in_is_sent_to_confirm_first(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """PRIV-04 "requires recent re-authentication": past `recent_auth_seconds` the page and
    the download both go to /account/reauth; after the password, back to the page."""
    await make_user(ctx, email=EMAIL)
    await account_sign_in(client, EMAIL)
    page = await client.get("/account/export")
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    stale = await client.post("/account/export", data={"csrf_token": csrf_token(page.text)})
    assert stale.status_code == 303
    assert stale.headers["location"] == "/account/reauth?next=/account/export"
    again = await client.get("/account/export")
    assert again.status_code == 303 and again.headers["location"] == stale.headers["location"]

    reauth = await client.get(stale.headers["location"])
    confirmed = await client.post("/account/reauth", data={
        "csrf_token": csrf_token(reauth.text), "next": "/account/export",
        "password": PASSWORD})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account/export"
    assert (await download(client)).status_code == 200


@pytest.mark.parametrize("token", [None, "", "forged-token", "from-the-delete-form"])
async def test_the_download_needs_the_forms_csrf_token(
        client: httpx.AsyncClient, ctx: Context, token: str | None) -> None:
    """A cross-site POST (no token, an empty or forged one, another form's) gets no data."""
    await make_user(ctx, email=EMAIL)
    await account_sign_in(client, EMAIL)
    if token == "from-the-delete-form":
        token = csrf_token((await client.get("/account/delete")).text)
    data = {} if token is None else {"csrf_token": token}
    refused = await client.post("/account/export", data=data)
    # No body is not a form (400); a form without this browser's token is refused as a
    # possible forgery (403).
    assert refused.status_code == (400 if token is None else 403)
    assert "text/html" in refused.headers["content-type"]
    assert EMAIL not in refused.text and "content-disposition" not in refused.headers


async def test_signed_out_goes_to_the_sign_in_page(client: httpx.AsyncClient, ctx: Context,
                                                  new_browser: Browsers) -> None:
    """Delivered only to the authenticated customer: no session, or a session that ended,
    gets the sign-in page and no data."""
    assert (await client.get("/account/export")).headers["location"] == "/account/login"
    refused = await client.post("/account/export", data={"csrf_token": "x"})
    assert (refused.status_code, refused.headers["location"]) == (303, "/account/login")

    await make_user(ctx, email=EMAIL)
    browser = new_browser()
    await account_sign_in(browser, EMAIL)
    page = await browser.get("/account/export")
    cookie = browser.cookies[SESSION]
    overview = await browser.get("/account")
    logout = re.search(r'action="/account/logout">\s*<input type="hidden" name="csrf_token" '
                       r'value="([^"]+)"', overview.text)
    assert logout
    await browser.post("/account/logout", data={"csrf_token": logout.group(1)})
    browser.cookies.set(SESSION, cookie, domain=urlsplit(ISSUER).hostname, path="/")
    ended = await browser.post("/account/export", data={"csrf_token": csrf_token(page.text)})
    assert (ended.status_code, ended.headers["location"]) == (303, "/account/login")


async def test_the_sixth_download_within_the_hour_is_held_back(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        new_browser: Browsers) -> None:
    """PRIV-04 "rate-limited": EXPORTS_PER_WINDOW downloads an hour per account, then 429 with
    Retry-After until the hour is over, in any browser; another account is not affected."""
    await make_user(ctx, email=EMAIL)
    await make_user(ctx, email=BOB)
    await account_sign_in(client, EMAIL)
    page = await client.get("/account/export")
    form = {"csrf_token": csrf_token(page.text)}
    for _ in range(EXPORTS_PER_WINDOW):
        assert (await client.post("/account/export", data=form)).status_code == 200
    clock.advance(60)
    held = await client.post("/account/export", data=form)
    assert held.status_code == 429
    assert held.headers["retry-after"] == str(EXPORT_WINDOW_SECONDS - 60)
    assert "Too many downloads of your data" in held.text
    assert "content-disposition" not in held.headers

    elsewhere = new_browser()  # the same account in another browser: still held back
    await account_sign_in(elsewhere, EMAIL)
    assert (await download(elsewhere)).status_code == 429
    bob = new_browser()
    await account_sign_in(bob, BOB)
    assert (await download(bob)).status_code == 200

    clock.advance(EXPORT_WINDOW_SECONDS)
    await account_sign_in(client, EMAIL)  # the hour made the sign-in stale too
    assert (await download(client)).status_code == 200
