"""Sign in with Google through our login page, end to end against the Google fake: the brand
app runs its code flow with us, the customer picks Google, and the app gets our tokens for the
right account (issue 4). Requirement numbers refer to federation.md §9."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from idp.federation.config import UpstreamConfig
from idp.services.context import Context
from idp.services.upstream.providers import save_upstream
from tests.conftest import ISSUER
from tests.fakes.google import FakeGoogle
from tests.flows import continue_with_google, press_continue, prove_account, sign_in_with_google
from tests.helpers import (
    PASSWORD,
    Flow,
    approve,
    csrf_token,
    login,
    make_app,
    make_user,
    offered_imports,
    query_of,
    redeem,
    unverified_account_signed_in,
    walk,
)
from tests.helpers import (
    unverified_claims as claims,
)
from tests.upstreams import GOOGLE_CLIENT_ID, GOOGLE_SECRET, RISC, SECEVENT


async def test_google_sign_in_creates_an_account_and_sso_reaches_a_second_app(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """End to end (issue 4, done-when); requirements 3, 14, 33, 34."""
    shop = await make_app(ctx)
    flow, code = await sign_in_with_google(browser, shop)
    tokens = (await redeem(browser, flow, code)).json()
    id_claims = claims(tokens["id_token"])
    # Our own opaque sub, never Google's (requirement 34), and Google's verified Gmail address.
    assert id_claims["sub"] != google.users["gmail"].sub
    assert id_claims["amr"] == ["fed"]
    info = (await browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert info["email"] == "alice@gmail.com" and info["email_verified"] is True
    assert info["name"] == "Alice Gmail"
    # Google saw state, nonce and PKCE S256 (requirement 3).
    authorize = next(e for e in google.log.entries if e.path == "/o/oauth2/v2/auth")
    assert {"state", "nonce", "code_challenge"} <= set(authorize.params)
    assert authorize.params["code_challenge_method"] == "S256"
    # A second app signs the same customer in without any prompt but consent.
    second = await make_app(ctx, name="Magazine", redirect_uri="https://app.example/mag")
    flow2 = Flow(second)
    page = await walk(browser, await browser.get("/authorize", params=flow2.params()))
    assert urlsplit(str(page.url)).path.endswith("/consent")
    done = await approve(browser, page)
    tokens2 = (await redeem(browser, flow2, query_of(done.headers["location"])["code"])).json()
    assert claims(tokens2["id_token"])["sub"] == id_claims["sub"]
    # Signing in with Google again lands in the same account.
    browser.cookies.clear()
    flow3, code3 = await sign_in_with_google(browser, shop)
    again = (await redeem(browser, flow3, code3)).json()
    assert claims(again["id_token"])["sub"] == id_claims["sub"]


async def test_pre_hijacked_account_is_neutralised(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, new_browser) -> None:  # type: ignore[no-untyped-def]
    """Pre-hijacking (issue 4, done-when; requirement 23): the attacker registered the
    victim's Gmail address with a password first; after the victim signs in with Google the
    attacker's password no longer works and no attacker session survives."""
    shop = await make_app(ctx)
    attacker = new_browser()
    # Registration through the pages now proves the address (tests/test_signup.py), so the
    # attacker's account is one nobody proved: made by an operator, or from before.
    await unverified_account_signed_in(ctx, attacker, shop, "alice@gmail.com",
                                       "attacker password 1")
    assert attacker.cookies.get("__Host-idp_session")
    victim_flow, code = await sign_in_with_google(browser, shop)
    victim = claims((await redeem(browser, victim_flow, code)).json()["id_token"])
    # The attacker's session is gone: the next authorization asks them to sign in.
    again = await walk(attacker, await attacker.get("/authorize", params=Flow(shop).params()))
    assert urlsplit(str(again.url)).path.endswith("/login")
    # And the password they set no longer works.
    failed = await login(attacker, again, "alice@gmail.com", "attacker password 1")
    assert "not correct" in failed.text
    # The victim owns the account the address belongs to.
    async with ctx.db.transaction() as session:
        from idp.store import users as user_store

        user = await user_store.find_by_email(session, "alice@gmail.com")
    assert user is not None and user.id == victim["sub"]
    assert user.password_hash is None and user.email_verified is True


async def test_existing_verified_account_links_only_after_proving_it(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 19 (default policy `prompt`): no session for the existing account before
    the customer signs in to it; then the Google identity is linked to it."""
    shop = await make_app(ctx)
    existing = await make_user(ctx, email="alice@gmail.com")
    flow = Flow(shop)
    page = await walk(browser, await browser.get("/authorize", params=flow.params()))
    prompt = await continue_with_google(browser, page)
    assert "already uses this email address" in prompt.text
    assert not browser.cookies.get("__Host-idp_session")
    action = prompt.text.split('<form method="post" action="')[1].split('"')[0]
    assert action.endswith("/login")
    handle = prompt.text.split('name="link" value="')[1].split('"')[0]
    linked = await walk(browser, await browser.post(action, data={
        "csrf_token": csrf_token(prompt.text), "link": handle, "email": "alice@gmail.com",
        "password": PASSWORD}))
    if urlsplit(str(linked.url)).path.endswith("/consent"):
        linked = await approve(browser, linked)
    tokens = (await redeem(browser, flow, query_of(linked.headers["location"])["code"])).json()
    assert claims(tokens["id_token"])["sub"] == existing
    # ATO-15: the link is on the account's security record, with how it was proved.
    from idp.services.signin import security_events

    async with ctx.db.transaction() as session:
        recorded = [(e.kind, e.detail) for e in
                    await security_events.events_of_user(session, existing)]
    assert (security_events.IDENTITY_LINKED,
            {"alias": "google", "via": "password proof"}) in recorded
    # Next time Google alone signs the customer in to the same account.
    browser.cookies.clear()
    flow2, code = await sign_in_with_google(browser, shop)
    assert claims((await redeem(browser, flow2, code)).json()["id_token"])["sub"] == existing


async def test_cancel_at_google_creates_nothing(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 7: an upstream cancel creates nothing and returns to the login page."""
    shop = await make_app(ctx)
    google.deny = True
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    back = await continue_with_google(browser, page)
    assert "was cancelled" in back.text
    assert urlsplit(str(back.url)).path.endswith("/callback")
    assert not any(e.path == "/token" for e in google.log.entries)
    async with ctx.db.transaction() as session:
        from sqlalchemy import text

        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_state_is_single_use_and_bound_to_the_browser(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, new_browser) -> None:  # type: ignore[no-untyped-def]
    """Requirements 3 (single use) and 4 (login CSRF: another browser's callback refused)."""
    shop = await make_app(ctx)
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    start = await press_continue(browser, page, "google")
    at_google = await browser.get(start.headers["location"])
    callback = at_google.headers["location"]
    other = new_browser()
    stolen = await other.get(callback)
    assert stolen.status_code == 400
    assert not any(e.path == "/token" for e in google.log.entries)
    # The state was consumed by that attempt: even the right browser cannot replay it.
    assert (await browser.get(callback)).status_code == 400


async def test_callback_of_another_upstream_is_refused_without_a_token_request(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 2: Google's code delivered to another upstream's callback path."""
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "corp", "type": "oidc", "issuer": "https://accounts.google.com",
        "client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_SECRET,
        "discovery_url": google.discovery_url}))
    shop = await make_app(ctx)
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    start = await press_continue(browser, page, "google")
    at_google = await browser.get(start.headers["location"])
    mixed = at_google.headers["location"].replace("/federation/google/", "/federation/corp/")
    assert (await browser.get(mixed)).status_code == 400
    assert not any(e.path == "/token" for e in google.log.entries)


async def test_wrong_iss_in_the_callback_is_refused_before_the_token_request(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 6 through our callback: a mix-up `iss` stops the login."""
    shop = await make_app(ctx)
    google.callback_iss = "wrong"
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    back = await continue_with_google(browser, page)
    assert "did not work" in back.text
    assert not any(e.path == "/token" for e in google.log.entries)


async def test_upstreams_cli(ctx: Context, database_url: str, tmp_path,  # type: ignore[no-untyped-def]
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 4 item 1: upstreams managed through the CLI; secrets stored encrypted."""
    import asyncio
    import json

    from sqlalchemy import text

    from idp.cli import main as idp_cli

    for name, value in {"IDP_DATABASE_URL": database_url, "IDP_ISSUER": ISSUER,
                        "IDP_KEY_ENCRYPTION_SECRET": ctx.settings.resolved_key_secret()}.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "google.json"
    config.write_text(json.dumps({"alias": "google", "type": "google",
                                  "client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_SECRET,
                                  "discovery_url": "https://google.fake/.well-known/openid-configuration"}))
    assert await asyncio.to_thread(idp_cli, ["upstreams", "add", "--config-file",
                                             str(config)]) == 0
    assert json.loads(capsys.readouterr().out) == {"alias": "google", "type": "google"}
    assert await asyncio.to_thread(idp_cli, ["upstreams", "list"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"alias": "google", "name": "Google"}]
    async with ctx.db.transaction() as session:
        stored = (await session.execute(text(
            "SELECT config, secrets_encrypted FROM upstreams"))).one()
    assert GOOGLE_SECRET not in str(stored[0]) and GOOGLE_SECRET not in stored[1]
    config.write_text(json.dumps({"alias": "bad", "type": "google", "client_id": "x",
                                  "client_secret": GOOGLE_SECRET, "discovery_url": "http://plain"}))
    assert await asyncio.to_thread(idp_cli, ["upstreams", "add", "--config-file",
                                             str(config)]) == 2
    assert GOOGLE_SECRET not in capsys.readouterr().err


# Google RISC (Cross-Account Protection) receiver: federation.md §1.7, §9 requirement 28.

async def test_risc_sessions_revoked_ends_the_google_sessions(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 28: `sessions-revoked` and `account-disabled` (hijacking) end our sessions
    and tokens derived from the Google identity (202); the same jti again changes nothing;
    an invalid token gets 400; `verification` is only logged."""
    from tests.fakes.common import pooled_rsa_key

    shop = await make_app(ctx)
    flow, code = await sign_in_with_google(browser, shop)
    tokens = (await redeem(browser, flow, code)).json()
    sub = google.users["gmail"].sub

    async def signed_in() -> bool:
        page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
        return not urlsplit(str(page.url)).path.endswith("/login")

    verification = google.risc_event("risc/event-type/verification", sub, GOOGLE_CLIENT_ID)
    assert (await browser.post(RISC, content=verification, headers=SECEVENT)).status_code == 202
    forged = google.keys.sign({"iss": "https://accounts.google.com/", "aud": GOOGLE_CLIENT_ID,
                               "iat": 1, "jti": "x", "events": {
                                   "https://schemas.openid.net/secevent/risc/event-type/"
                                   "sessions-revoked": {"subject": {
                                       "subject_type": "iss-sub", "sub": sub}}}},
                              key=pooled_rsa_key(7), header={"kid": google.keys.current.kid})
    assert (await browser.post(RISC, content=forged, headers=SECEVENT)).status_code == 400
    other_aud = google.risc_event("risc/event-type/sessions-revoked", sub, "someone-else")
    assert (await browser.post(RISC, content=other_aud, headers=SECEVENT)).status_code == 400
    assert await signed_in()
    before = await browser.post("/introspect", data={"token": tokens["access_token"]},
                                headers=shop.basic())
    assert before.json()["active"] is True
    revoked = google.risc_event("risc/event-type/sessions-revoked", sub, GOOGLE_CLIENT_ID)
    assert (await browser.post(RISC, content=revoked, headers=SECEVENT)).status_code == 202
    assert not await signed_in()
    introspected = await browser.post("/introspect", data={"token": tokens["access_token"]},
                                      headers=shop.basic())
    assert introspected.json() == {"active": False}
    # The identity stays linked: the next Google login works.
    browser.cookies.clear()
    await sign_in_with_google(browser, shop)
    assert await signed_in()
    assert (await browser.post(RISC, content=revoked, headers=SECEVENT)).status_code == 202
    assert await signed_in()  # a duplicate (same jti) is acknowledged and ignored
    hijacked = google.risc_event("risc/event-type/account-disabled", sub, GOOGLE_CLIENT_ID,
                                 reason="hijacking")
    assert (await browser.post(RISC, content=hijacked, headers=SECEVENT)).status_code == 202
    assert not await signed_in()


async def test_risc_account_disabled_suspends_google_login_until_enabled(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirement 28: `account-disabled` without a reason suspends Google login for the
    user; `account-enabled` lifts the suspension."""
    shop = await make_app(ctx)
    await sign_in_with_google(browser, shop)
    sub = google.users["gmail"].sub
    disabled = google.risc_event("risc/event-type/account-disabled", sub, GOOGLE_CLIENT_ID)
    assert (await browser.post(RISC, content=disabled, headers=SECEVENT)).status_code == 202
    browser.cookies.clear()
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    refused = await continue_with_google(browser, page)
    assert "disabled" in refused.text and not browser.cookies.get("__Host-idp_session")
    enabled = google.risc_event("risc/event-type/account-enabled", sub, GOOGLE_CLIENT_ID)
    assert (await browser.post(RISC, content=enabled, headers=SECEVENT)).status_code == 202
    browser.cookies.clear()
    await sign_in_with_google(browser, shop)


async def _auto_linking(ctx: Context, google: FakeGoogle) -> None:
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "google", "type": "google", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET,
        "discovery_url": google.discovery_url, "linking_policy": "auto_if_authoritative"}))
    ctx.upstream_clients.clear()


@pytest.mark.parametrize(("person", "email", "links"), [
    ("gmail", "alice@gmail.com", True),  # Google is authoritative for Gmail
    ("workspace", "bob@startup.example", True),  # hd equals the email's domain
    ("consumer", "carol@example.org", False),  # a Google account on someone else's domain
])
async def test_auto_linking_only_where_google_is_authoritative(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, person: str, email: str,
        links: bool) -> None:
    """Requirement 20 through the flow, under `auto_if_authoritative`: a verified local
    account is signed in without a prompt only when Google's verified address is one Google
    is authoritative for; otherwise the customer must prove the account first (requirement
    19) and no session exists before that."""
    await _auto_linking(ctx, google)
    existing = await make_user(ctx, email=email)
    google.login_user = person
    shop = await make_app(ctx)
    flow = Flow(shop)
    page = await walk(browser, await browser.get("/authorize", params=flow.params()))
    page = await continue_with_google(browser, page)
    if not links:
        assert "already uses this email address" in page.text
        assert not browser.cookies.get("__Host-idp_session")
        return
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await approve(browser, page, offered_imports(page.text))
    tokens = (await redeem(browser, flow, query_of(page.headers["location"])["code"])).json()
    assert claims(tokens["id_token"])["sub"] == existing


async def test_auto_linking_never_reaches_an_unverified_local_account_unstripped(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """Requirements 20 and 23: the local account's email must be verified too; an
    unverified one holding a Gmail address loses its password before the link."""
    await _auto_linking(ctx, google)
    from idp.services.accounts import admin

    user = await admin.create_user(ctx, email="alice@gmail.com", password=PASSWORD,
                                   profile={}, email_verified=False)
    flow, code = await sign_in_with_google(browser, await make_app(ctx))
    assert claims((await redeem(browser, flow, code)).json()["id_token"])["sub"] == user.id
    from idp.services.signin.authentication import verify_password_login

    assert await verify_password_login(ctx, "alice@gmail.com", PASSWORD) is None


async def test_a_google_session_claims_the_federated_acr_not_the_password_one(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle) -> None:
    """OIDC Core §2 and §5.5.1.1: the ID token names how the customer signed in; a request
    whose essential `acr` is the password context is not met by a Google session."""
    import json

    shop = await make_app(ctx)
    flow, code = await sign_in_with_google(browser, shop)
    id_claims = claims((await redeem(browser, flow, code)).json()["id_token"])
    assert id_claims["acr"] == "urn:idp:acr:federated" and id_claims["amr"] == ["fed"]
    meta = (await browser.get("/.well-known/openid-configuration")).json()
    assert id_claims["acr"] in meta["acr_values_supported"]
    essential = json.dumps({"id_token": {"acr": {"essential": True,
                                                 "values": ["urn:idp:acr:password"]}}})
    flow2 = Flow(shop)
    done = await walk(browser, await browser.get("/authorize",
                                                 params=flow2.params(claims=essential)))
    assert done.status_code == 303
    assert query_of(done.headers["location"])["error"] == "access_denied"


async def test_linking_at_sign_in_ends_the_accounts_other_sessions(
        browser: httpx.AsyncClient, ctx: Context, google: FakeGoogle, new_browser) -> None:  # type: ignore[no-untyped-def]
    """Requirement 24 on the sign-in path: when the customer proves the existing account to
    connect Google to it, every other session of the account ends, as when linking from the
    account center."""
    await make_user(ctx, email="alice@gmail.com")
    elsewhere = new_browser()
    page = await elsewhere.get("/account/login")
    signed_in = await elsewhere.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "alice@gmail.com", "password": PASSWORD})
    assert signed_in.status_code == 303 and (await elsewhere.get("/account")).status_code == 200
    flow = Flow(await make_app(ctx))
    page = await walk(browser, await browser.get("/authorize", params=flow.params()))
    prompt = await continue_with_google(browser, page)
    linked = await prove_account(browser, prompt, "alice@gmail.com")
    assert linked.status_code in (200, 303)
    assert (await elsewhere.get("/account")).headers["location"] == "/account/login"
    assert browser.cookies.get("__Host-idp_session")
