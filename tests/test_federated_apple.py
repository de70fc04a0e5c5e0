"""Sign in with Apple through our login page, end to end against the Apple fake: Apple answers
with a cross-site form_post, which our SameSite=Lax cookies do not accompany, so our callback
re-navigates with a top-level GET that carries them (federation.md §2.3, §9 requirement 5).
Requirement numbers refer to federation.md §9."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from idp.services.context import Context
from idp.store.models import User
from tests.conftest import ISSUER, FakeClock
from tests.fakes.apple import FakeApple
from tests.flows import (
    apple_identity,
    at_apple,
    back_from_apple,
    cross_site_post,
    form_of,
    refresh,
    sign_in_with_apple,
    signed_in,
)
from tests.helpers import (
    App,
    Flow,
    approve,
    csrf_token,
    make_app,
    query_of,
    redeem,
    walk,
)
from tests.helpers import unverified_claims as claims
from tests.upstreams import APPLE_CALLBACK, APPLE_SERVICES_ID, APPLE_TEAM, NOTIFICATIONS


async def test_apple_form_post_sign_in_end_to_end(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """End to end with Apple: requirements 5 (form_post without Lax cookies), 11 (string
    booleans), 14 (namespace apple:{team}), 34 (our own sub), 36 (the name arrives once)."""
    shop = await make_app(ctx)
    assert apple.is_private_email_as_string and apple.email_verified_value == "true"
    flow, code = await sign_in_with_apple(browser, app, shop)
    tokens = (await redeem(browser, flow, code)).json()
    id_claims = claims(tokens["id_token"])
    person = apple.users["relay"]
    assert id_claims["sub"] != apple.sub_for(person, APPLE_TEAM) and id_claims["amr"] == ["fed"]
    info = (await browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"})).json()
    # "true" as a string is true (requirement 11); the relay domain is Apple's (requirement 21).
    assert info["email"] == person.email and info["email_verified"] is True
    assert info["name"] == "Ann Apple"
    identity = await apple_identity(ctx)
    assert identity.namespace == f"apple:{APPLE_TEAM}" and identity.subject == apple.sub_for(
        person, APPLE_TEAM)
    assert identity.user_id == id_claims["sub"] and identity.email_verified is True
    assert identity.profile["name"]["value"] == "Ann Apple"
    # A second app signs the same customer in with nothing but consent.
    second = await make_app(ctx, name="Magazine", redirect_uri="https://app.example/mag")
    flow2 = Flow(second)
    page = await walk(browser, await browser.get("/authorize", params=flow2.params()))
    assert urlsplit(str(page.url)).path.endswith("/consent")
    done = await approve(browser, page)
    tokens2 = (await redeem(browser, flow2, query_of(done.headers["location"])["code"])).json()
    assert claims(tokens2["id_token"])["sub"] == id_claims["sub"]
    # Apple sends `user` on the first authorization only (§2.3): a later login without it
    # lands in the same account and clears nothing (requirement 36).
    browser.cookies.clear()
    flow3, code3 = await sign_in_with_apple(browser, app, shop)
    again = (await redeem(browser, flow3, code3)).json()
    assert claims(again["id_token"])["sub"] == id_claims["sub"]
    authorizations = [e for e in apple.log.entries if e.path == "/auth/authorize"]
    assert len(authorizations) == 2
    assert (await apple_identity(ctx)).profile["name"]["value"] == "Ann Apple"
    async with ctx.db.transaction() as session:
        user = await session.get(User, id_claims["sub"])
    assert user is not None and user.profile.get("name") == "Ann Apple"
    info = (await browser.get("/userinfo", headers={
        "Authorization": f"Bearer {again['access_token']}"})).json()
    assert info["name"] == "Ann Apple"


async def test_transfer_sub_and_team_are_kept_on_the_identity(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 18: the team id (in the namespace) and Apple's `transfer_sub`, sent while
    an app moves between teams, are stored; a later login without it keeps the stored one."""
    apple.transfer_sub = "000999.transferred.0999"
    await sign_in_with_apple(browser, app, await make_app(ctx))
    identity = await apple_identity(ctx)
    assert identity.namespace == f"apple:{APPLE_TEAM}"
    assert identity.transfer_sub == "000999.transferred.0999"
    apple.transfer_sub = None
    browser.cookies.clear()
    await sign_in_with_apple(browser, app, await make_app(ctx, name="Again"))
    assert (await apple_identity(ctx)).transfer_sub == "000999.transferred.0999"


async def test_form_post_without_any_transaction_binding_is_rejected(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 5: the re-navigation completes only in the browser that began the login;
    without our browser cookie even the GET is refused, no token request is made, and the
    state is spent."""
    shop = await make_app(ctx)
    _, apple_page = await at_apple(browser, shop)
    renavigate = await cross_site_post(app, apple_page)
    _, action, fields = form_of(renavigate.text)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ISSUER) as stranger:
        assert (await stranger.get(action, params=fields)).status_code == 400
    assert not any(e.path == "/auth/token" for e in apple.log.entries)
    assert (await browser.get(action, params=fields)).status_code == 400
    # A POST carrying no state at all is refused too.
    assert (await browser.post(APPLE_CALLBACK, data={"code": "x"})).status_code == 400


async def test_cancel_at_apple_creates_nothing(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 7: an Apple cancel consumes the transaction and creates nothing."""
    shop = await make_app(ctx)
    apple.cancel = True
    _, back = await back_from_apple(browser, app, shop)
    assert "was cancelled" in back.text
    async with ctx.db.transaction() as session:
        assert (await session.scalars(select(User))).first() is None


# Server-to-server notifications (federation.md §2.7, §9 requirement 27), through HTTP.

async def offline_sign_in(browser: httpx.AsyncClient, app, ctx: Context  # type: ignore[no-untyped-def]
                          ) -> tuple[App, dict[str, str]]:
    shop = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "email", "offline_access"],
                          backchannel_logout_uri="https://app.example/backchannel")
    flow, code = await sign_in_with_apple(browser, app, shop,
                                          scope="openid email offline_access", prompt="consent")
    tokens = (await redeem(browser, flow, code)).json()
    assert tokens["refresh_token"]
    return shop, tokens


async def backchannel_logouts(ctx: Context) -> int:
    from sqlalchemy import func

    from idp.store.models import OutboxMessage

    async with ctx.db.transaction() as session:
        return (await session.scalar(select(func.count()).select_from(OutboxMessage))) or 0


async def test_consent_revoked_unlinks_and_ends_what_the_login_led_to(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27, consent-revoked: the Apple identity is unlinked, the browser session
    that used it ends (the app is sent a back-channel logout token), and the refresh tokens
    issued in it are revoked, offline_access ones included; requirement 32 through our own
    back-channel. The identity is kept as revoked (the same subject may come back; see
    tests/test_upstream_revocation.py) without its stored Apple refresh token."""
    from idp.services.upstream.identities import REVOKED

    shop, tokens = await offline_sign_in(browser, app, ctx)
    assert await signed_in(browser, shop)
    assert await backchannel_logouts(ctx) == 0
    body = apple.notification("consent-revoked", "relay", APPLE_SERVICES_ID)
    response = await browser.post(NOTIFICATIONS, content=body,
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    identity = await apple_identity(ctx)
    assert identity.status == REVOKED and identity.refresh_token_encrypted is None
    assert await backchannel_logouts(ctx) == 1
    assert await refresh(browser, shop, tokens["refresh_token"]) == 400
    assert not await signed_in(browser, shop)


async def test_account_delete_marks_the_subject_dead(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27, account-delete: as consent-revoked, and the subject is permanently
    dead: signing in with it again gets no session."""
    shop, tokens = await offline_sign_in(browser, app, ctx)
    body = apple.notification("account-delete", "relay", APPLE_SERVICES_ID)
    assert (await browser.post(NOTIFICATIONS, content=body)).status_code == 200
    identity = await apple_identity(ctx)
    assert identity.status == "dead" and identity.refresh_token_encrypted is None
    assert await refresh(browser, shop, tokens["refresh_token"]) == 400
    assert not await signed_in(browser, shop)
    browser.cookies.clear()
    _, back = await back_from_apple(browser, app, shop)
    assert "disabled" in back.text
    assert not browser.cookies.get("__Host-idp_session")


async def test_email_disabled_and_enabled_flag_the_relay_and_jti_is_deduplicated(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27, email-disabled / email-enabled flag the relay address; a notification
    replayed with the same jti changes nothing; the session is left alone."""
    shop, _ = await offline_sign_in(browser, app, ctx)
    assert (await apple_identity(ctx)).email_deliverable is None
    disabled = apple.notification("email-disabled", "relay", APPLE_SERVICES_ID, jti="jti-1")
    assert (await browser.post(NOTIFICATIONS, content=disabled)).status_code == 200
    assert (await apple_identity(ctx)).email_deliverable is False
    enabled_same_jti = apple.notification("email-enabled", "relay", APPLE_SERVICES_ID, jti="jti-1")
    assert (await browser.post(NOTIFICATIONS, content=enabled_same_jti)).status_code == 200
    assert (await apple_identity(ctx)).email_deliverable is False
    assert (await browser.post(NOTIFICATIONS, content=disabled)).status_code == 200
    enabled = apple.notification("email-enabled", "relay", APPLE_SERVICES_ID, jti="jti-2")
    assert (await browser.post(NOTIFICATIONS, content=enabled)).status_code == 200
    assert (await apple_identity(ctx)).email_deliverable is True
    assert await signed_in(browser, shop)


async def test_notifications_unknown_types_and_bad_signatures(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27: 200 for unknown types (and for subjects we do not know), 400 for a bad
    signature, another audience, or a body that is not {"payload": JWS}; nothing changes."""
    import json

    from tests.fakes.common import pooled_rsa_key

    shop, _ = await offline_sign_in(browser, app, ctx)
    unknown = apple.notification("something-new", "relay", APPLE_SERVICES_ID)
    assert (await browser.post(NOTIFICATIONS, content=unknown)).status_code == 200
    stranger = apple.notification("consent-revoked", "icloud", APPLE_SERVICES_ID)
    assert (await browser.post(NOTIFICATIONS, content=stranger)).status_code == 200
    forged = pooled_rsa_key(3)  # not among the fake's published keys
    unknown_kid = apple.notification("consent-revoked", "relay", APPLE_SERVICES_ID, key=forged)
    assert (await browser.post(NOTIFICATIONS, content=unknown_kid)).status_code == 400
    claims = {"iss": "https://appleid.apple.com", "aud": APPLE_SERVICES_ID, "iat": 1, "jti": "f",
              "events": json.dumps({"type": "consent-revoked",
                                    "sub": apple.sub_for(apple.users["relay"], APPLE_TEAM)})}
    payload = apple.keys.sign(claims, key=forged, header={"kid": apple.keys.current.kid})
    bad_signature = json.dumps({"payload": payload})
    assert (await browser.post(NOTIFICATIONS, content=bad_signature)).status_code == 400
    other_aud = apple.notification("consent-revoked", "relay", "com.other.app")
    assert (await browser.post(NOTIFICATIONS, content=other_aud)).status_code == 400
    assert (await browser.post(NOTIFICATIONS, content=b"{}")).status_code == 400
    assert (await browser.post(NOTIFICATIONS, content=b"not json")).status_code == 400
    assert (await apple_identity(ctx)).status == "active"
    assert await signed_in(browser, shop)
    assert (await browser.post("/federation/nope/notifications",
                               content=unknown)).status_code == 404


# -- Confirming who you are with Apple (requirement 25) --------------------------------------

SESSION = "__Host-idp_session"
APPLE_REAUTH_FAILED = ("Confirming with Apple did not work: Apple has to ask for your sign-in "
                       "again. Try again.")


async def reauth_with_apple(browser: httpx.AsyncClient, app, next_path: str,  # type: ignore[no-untyped-def]
                            at_apple_for: float, clock: FakeClock) -> httpx.Response:
    """/account/reauth → "Continue with Apple" → Apple (the customer spends `at_apple_for`
    seconds there) → Apple's cross-site form_post → our re-navigation → where we send the
    browser after."""
    page = await browser.get("/account/reauth", params={"next": next_path})
    assert page.status_code == 200
    assert 'data-upstream="apple"' in page.text and 'name="password"' not in page.text
    start = await browser.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": next_path, "upstream": "apple"})
    assert start.status_code == 303
    assert start.headers["location"].startswith("https://apple.fake/auth/authorize")
    apple_page = await browser.get(start.headers["location"])
    assert apple_page.status_code == 200
    clock.advance(at_apple_for)
    renavigate = await cross_site_post(app, apple_page)
    assert renavigate.status_code == 200
    method, action, fields = form_of(renavigate.text)
    assert (method, action) == ("get", "/federation/apple/callback")
    return await walk(browser, await browser.get(action, params=tuple(fields)))


async def apple_customer(browser: httpx.AsyncClient, app, ctx: Context,  # type: ignore[no-untyped-def]
                         clock: FakeClock) -> str:
    """A password-less account made by signing in with Apple, whose session is no longer a
    recent sign-in; returns the session cookie."""
    shop = await make_app(ctx)
    await sign_in_with_apple(browser, app, shop)
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    stale = await browser.get("/account/delete")
    assert stale.status_code == 303
    assert stale.headers["location"] == "/account/reauth?next=/account/delete"
    cookie = browser.cookies.get(SESSION)
    assert cookie
    return cookie


async def test_reauth_with_apple_through_the_account_center(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple,  # type: ignore[no-untyped-def]
        clock: FakeClock) -> None:
    """Requirement 25 through HTTP, for a customer whose only way in is Apple: the round trip
    through Apple's form_post comes back to `next` with a fresh session, and the deletion
    page opens. Apple's ID token says when the customer authenticated at Apple (during the
    round trip, though the token was issued 40 s later), which is what is checked."""
    before = await apple_customer(browser, app, ctx, clock)
    started = int(clock())
    back = await reauth_with_apple(browser, app, "/account/delete", 40, clock)
    assert back.status_code == 200 and urlsplit(str(back.url)).path == "/account/delete"
    assert "<h1>Delete your account</h1>" in back.text
    assert browser.cookies.get(SESSION) not in (None, before)
    # The ID token Apple gave: authenticated when the customer was at Apple, issued later.
    id_token = claims(next(t for t in reversed(apple.issued) if t.count(".") == 2))
    assert (id_token["auth_time"], id_token["iat"]) == (started, started + 40)
    assert (await browser.get("/account/delete")).status_code == 200


async def test_reauth_with_apple_refuses_an_authentication_older_than_the_round_trip(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple,  # type: ignore[no-untyped-def]
        clock: FakeClock) -> None:
    """README: confirming through a provider "refuses an ID token whose auth_time is older
    than the round trip". An Apple that took the browser's earlier authentication instead of
    asking again sends the sign-in's auth_time: refused with the "did not work" message, the
    session is not refreshed, and deleting still asks to confirm first."""
    before = await apple_customer(browser, app, ctx, clock)
    signed_in_at = apple.signed_in_at[apple.users["relay"].key]
    apple.reuse_session = True
    refused = await reauth_with_apple(browser, app, "/account/delete", 0, clock)
    assert apple.log.calls("/auth/token")[-1].form["grant_type"] == "authorization_code"
    id_token = claims(next(t for t in reversed(apple.issued) if t.count(".") == 2))
    assert id_token["auth_time"] == signed_in_at < int(clock()) - ctx.settings.recent_auth_seconds
    assert urlsplit(str(refused.url)).path == "/account/reauth"
    assert APPLE_REAUTH_FAILED in refused.text
    assert browser.cookies.get(SESSION) == before
    again = await browser.get("/account/delete")
    assert again.status_code == 303
    assert again.headers["location"] == "/account/reauth?next=/account/delete"
