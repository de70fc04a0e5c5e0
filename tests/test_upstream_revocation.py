"""Upstream-initiated revocation as brand apps and customers see it (federation.md §9
requirements 27 and 32): Apple `consent-revoked` and `account-delete` against the Apple fake,
the events and back-channel logout tokens our own dispatcher delivers to the apps, the account
left with no way in, and the settings that bound the delay. The Apple fixtures come from
tests/upstreams.py, the browser steps from tests/flows.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from idp.notifications.dispatcher import Dispatcher
from idp.notifications.outbox import LOGOUT_EVENT, SECURITY_EVENT
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.upstream.identities import REVOKED
from idp.services.upstream.tokens import UpstreamToken, seal
from idp.settings import Settings
from idp.store.models import Identity, OutboxMessage, User
from tests.conftest import ISSUER, make_settings
from tests.fakes.apple import FakeApple
from tests.flows import (
    apple_identity,
    back_from_apple,
    refresh,
    sign_in_with_apple,
    signed_in,
)
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    approve,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
    walk,
)
from tests.helpers import unverified_claims as claims
from tests.receiver import Receiver
from tests.upstreams import APPLE_SERVICES_ID, APPLE_TEAM, NOTIFICATIONS

CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
MAX_DELAY = 2  # requirement 32's bound, small here so that a missed wake-up is tested quickly
INTERVAL = 0.5


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, upstream_revocation_max_delay_seconds=MAX_DELAY,
                         outbox_interval_seconds=INTERVAL)


async def brand_app(ctx: Context, name: str = "Shop",
                    redirect_uri: str = "https://app.example/callback", **extra: Any) -> App:
    return await make_app(ctx, name=name, redirect_uri=redirect_uri,
                          grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "email", "offline_access"], **extra)


async def apple_tokens(browser: httpx.AsyncClient, app, shop: App) -> dict[str, str]:  # type: ignore[no-untyped-def]
    flow, code = await sign_in_with_apple(browser, app, shop,
                                          scope="openid email offline_access", prompt="consent")
    tokens: dict[str, str] = (await redeem(browser, flow, code)).json()
    return tokens


async def notify(browser: httpx.AsyncClient, apple: FakeApple, kind: str) -> None:
    body = apple.notification(kind, "relay", APPLE_SERVICES_ID)
    assert (await browser.post(NOTIFICATIONS, content=body)).status_code == 200


async def keep_upstream_token(ctx: Context, token: str = "r.apple-refresh-token") -> None:
    """What the login would have stored (requirement 31); set here directly."""
    async with ctx.db.transaction() as session:
        identity = (await session.scalars(select(Identity))).one()
        identity.refresh_token_encrypted, identity.refresh_token_digest = seal(
            ctx, UpstreamToken(token, "refresh_token"))


async def security_event_tokens(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.transaction() as session:
        rows = await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == SECURITY_EVENT).order_by(OutboxMessage.created_at))
        return [row.payload["claims"] for row in rows]


async def account(ctx: Context, user_id: str) -> User:
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def event_kinds(ctx: Context, user_id: str) -> list[str]:
    async with ctx.db.transaction() as session:
        return [e.kind for e in await security_events.events_of_user(session, user_id)]


async def introspect(browser: httpx.AsyncClient, shop: App, token: str) -> dict[str, Any]:
    response = await browser.post("/introspect", data={"token": token}, headers=shop.basic())
    body: dict[str, Any] = response.json()
    return body


async def test_consent_revoked_tells_subscribed_apps_and_the_subject_comes_back(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27, consent-revoked: the identity is kept as revoked without its stored
    Apple token; each app of the customer with an event receiver gets a CAEP credential-change
    SET about our `sub`, never Apple's; apps without a receiver or without the customer get
    nothing. Signing in with Apple again lands in the same password-less account, whose email
    is the relay address, with no "sign in with your password" dead end."""
    shop = await brand_app(ctx, event_uri="https://app.example/events")
    quiet = await brand_app(ctx, "Quiet", "https://app.example/quiet")
    await brand_app(ctx, "Stranger", "https://app.example/stranger",
                    event_uri="https://app.example/stranger-events")
    tokens = await apple_tokens(browser, app, shop)
    quiet_flow = Flow(quiet)
    consent = await walk(browser, await browser.get("/authorize", params=quiet_flow.params()))
    done = await approve(browser, consent)
    assert (await redeem(browser, quiet_flow, query_of(done.headers["location"])["code"])
            ).status_code == 200
    sub = claims(tokens["id_token"])["sub"]
    await keep_upstream_token(ctx)
    assert await security_event_tokens(ctx) == []

    await notify(browser, apple, "consent-revoked")

    identity = await apple_identity(ctx)
    assert identity.status == REVOKED
    assert identity.refresh_token_encrypted is None and identity.refresh_token_digest is None
    assert not await signed_in(browser, shop)
    assert await refresh(browser, shop, tokens["refresh_token"]) == 400
    [event] = await security_event_tokens(ctx)
    assert event["aud"] == shop.client_id and event["iss"] == ISSUER
    assert event["sub_id"] == {"format": "iss_sub", "iss": ISSUER, "sub": sub}
    assert event["events"][CREDENTIAL_CHANGE] == {
        "event_timestamp": ctx.now(), "credential_type": "federated", "change_type": "revoke",
        "friendly_name": "Sign in with Apple", "initiating_entity": "user",
        "reason_admin": {"en": "The customer withdrew Sign in with Apple at Apple"}}
    assert apple.sub_for(apple.users["relay"], APPLE_TEAM) not in json.dumps(event)
    # The same notification again (a new jti) changes nothing and tells nobody twice.
    await notify(browser, apple, "consent-revoked")
    assert len(await security_event_tokens(ctx)) == 1

    user = await account(ctx, sub)
    assert user.password_hash is None and user.email == apple.users["relay"].email
    browser.cookies.clear()
    flow, code = await sign_in_with_apple(browser, app, shop)
    again = (await redeem(browser, flow, code)).json()
    assert claims(again["id_token"])["sub"] == sub
    assert (await apple_identity(ctx)).status == "active"
    assert security_events.IDENTITY_RELINKED in await event_kinds(ctx, sub)


async def test_account_delete_deactivates_an_account_with_no_other_way_in(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27, account-delete: as consent-revoked (the app is told, with change_type
    `delete`), the subject is dead, and the password-less account is deactivated: every token
    is inactive, a security event is recorded, and Apple sign-in is refused from then on."""
    shop = await brand_app(ctx, event_uri="https://app.example/events")
    tokens = await apple_tokens(browser, app, shop)
    sub = claims(tokens["id_token"])["sub"]
    await keep_upstream_token(ctx)

    await notify(browser, apple, "account-delete")

    identity = await apple_identity(ctx)
    assert identity.status == "dead" and identity.refresh_token_digest is None
    assert (await account(ctx, sub)).disabled_at == ctx.now()
    assert security_events.ACCOUNT_DISABLED in await event_kinds(ctx, sub)
    [event] = await security_event_tokens(ctx)
    assert event["events"][CREDENTIAL_CHANGE]["change_type"] == "delete"
    assert await introspect(browser, shop, tokens["access_token"]) == {"active": False}
    assert await introspect(browser, shop, tokens["refresh_token"]) == {"active": False}
    assert not await signed_in(browser, shop)
    browser.cookies.clear()
    _, refused = await back_from_apple(browser, app, shop)
    assert "This sign-in method is disabled." in refused.text
    assert not browser.cookies.get("__Host-idp_session")


async def test_account_delete_keeps_an_account_that_has_a_password(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27: only an account with no other login method is deactivated; one with
    a password keeps it and signs in with it."""
    shop = await brand_app(ctx)
    sub = claims((await apple_tokens(browser, app, shop))["id_token"])["sub"]
    async with ctx.db.transaction() as session:
        user = await session.get(User, sub)
        assert user is not None
        user.password_hash = await ctx.passwords.hash(PASSWORD)
        user.email_verified = True
        email = str(user.email)

    await notify(browser, apple, "account-delete")

    assert (await account(ctx, sub)).disabled_at is None
    assert (await apple_identity(ctx)).status == "dead"
    browser.cookies.clear()
    page = await walk(browser, await browser.get("/authorize", params=Flow(shop).params()))
    done = await login(browser, page, email, PASSWORD)
    if urlsplit(str(done.url)).path.endswith("/consent"):
        done = await approve(browser, done)
    assert done.status_code == 303 and "code=" in done.headers["location"]


async def test_account_delete_under_the_keep_policy(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Requirement 27, "according to policy": with `upstream_account_delete_policy=keep` the
    password-less account stays enabled (the subject is still dead)."""
    monkeypatch.setattr(ctx, "settings", ctx.settings.model_copy(
        update={"upstream_account_delete_policy": "keep"}))
    shop = await brand_app(ctx)
    sub = claims((await apple_tokens(browser, app, shop))["id_token"])["sub"]
    await notify(browser, apple, "account-delete")
    assert (await account(ctx, sub)).disabled_at is None
    assert (await apple_identity(ctx)).status == "dead"
    assert security_events.ACCOUNT_DISABLED not in await event_kinds(ctx, sub)


async def test_account_delete_after_consent_revoked_still_kills_the_subject(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple) -> None:  # type: ignore[no-untyped-def]
    """Requirement 27: a revoked identity may still be deleted at Apple; it then never comes
    back, and the account with no other way in is deactivated."""
    shop = await brand_app(ctx)
    sub = claims((await apple_tokens(browser, app, shop))["id_token"])["sub"]
    await notify(browser, apple, "consent-revoked")
    assert (await account(ctx, sub)).disabled_at is None  # it can still come back
    await notify(browser, apple, "account-delete")
    assert (await apple_identity(ctx)).status == "dead"
    assert (await account(ctx, sub)).disabled_at is not None


async def test_disabled_account_password_login_fails_like_a_wrong_password(
        new_browser, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A deactivated account cannot sign in with its (correct) password, and the answer is the
    one a wrong password gets, after the same password-hash work: nothing tells that the
    account exists or was disabled."""
    shop = await make_app(ctx)
    disabled_id = await make_user(ctx, email="dora@example.com")
    await make_user(ctx, email="walt@example.com")
    async with ctx.db.transaction() as session:
        user = await session.get(User, disabled_id)
        assert user is not None
        user.disabled_at = ctx.now()
    verified: list[bool] = []
    real_verify = ctx.passwords.verify

    async def counting_verify(stored: str | None, password: str) -> Any:
        verified.append(stored is not None)
        return await real_verify(stored, password)

    monkeypatch.setattr(ctx.passwords, "verify", counting_verify)

    async def attempt(email: str, password: str) -> httpx.Response:
        http = new_browser()
        page = await walk(http, await http.get("/authorize", params=Flow(shop).params()))
        answer = await login(http, page, email, password)
        assert not http.cookies.get("__Host-idp_session")
        return answer

    disabled = await attempt("dora@example.com", PASSWORD)
    wrong = await attempt("walt@example.com", "not the password at all")
    assert disabled.status_code == wrong.status_code == 200
    error = '<p class="error" role="alert" id="form-error">'
    assert error in disabled.text
    assert disabled.text.split(error)[1].split("<")[0] == wrong.text.split(error)[1].split("<")[0]
    # One real hash verification each: the disabled account did the same work.
    assert verified == [True, True]


@pytest.mark.parametrize("wake_up", ["delivered", "missed"])
async def test_revocation_reaches_the_brand_within_the_bound(
        browser: httpx.AsyncClient, app, ctx: Context, apple: FakeApple, wake_up: str) -> None:  # type: ignore[no-untyped-def]
    """Requirement 32, end to end with a real dispatcher: after Apple's consent-revoked, the
    tokens issued after that Apple login are inactive at introspection at once, and the
    brand's back-channel logout endpoint receives a valid logout token for the session within
    `upstream_revocation_max_delay_seconds`, whether the hook's wake-up reaches the dispatcher
    or is missed (then its periodic pass, no longer than the bound, delivers)."""
    logouts, events = Receiver(), Receiver(status=202)
    await logouts.start()
    await events.start()
    shop = await brand_app(ctx, backchannel_logout_uri=logouts.url, event_uri=events.url)
    tokens = await apple_tokens(browser, app, shop)
    id_claims = claims(tokens["id_token"])
    assert (await introspect(browser, shop, tokens["access_token"]))["active"] is True
    assert (await introspect(browser, shop, tokens["refresh_token"]))["active"] is True
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    if wake_up == "delivered":
        ctx.outbox_signal = dispatcher.wake.set
        interval = 3600.0  # only the wake-up can deliver in time
    else:
        interval = ctx.settings.outbox_interval_seconds
    task = asyncio.create_task(dispatcher.run_forever(interval))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(0.05)  # the dispatcher's first pass finds nothing and waits
        await notify(browser, apple, "consent-revoked")
        started = loop.time()
        assert await introspect(browser, shop, tokens["access_token"]) == {"active": False}
        assert await introspect(browser, shop, tokens["refresh_token"]) == {"active": False}
        await asyncio.wait_for(logouts.arrived.wait(), timeout=MAX_DELAY)
        assert loop.time() - started <= MAX_DELAY
        await asyncio.wait_for(events.arrived.wait(), timeout=MAX_DELAY)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        ctx.outbox_signal = None
        await dispatcher.close()
        await logouts.stop()
        await events.stop()
    [received] = logouts.received
    logout_token = received["logout_token"][0]
    header = pyjwt.get_unverified_header(logout_token)
    assert header["typ"] == "logout+jwt"
    jwks = {k["kid"]: k for k in (await browser.get("/jwks")).json()["keys"]}
    key = pyjwt.PyJWK(jwks[header["kid"]]).key
    logout = pyjwt.decode(logout_token, key, algorithms=["RS256"], audience=shop.client_id,
                          issuer=ISSUER)
    assert (logout["sub"], logout["sid"]) == (id_claims["sub"], id_claims["sid"])
    assert logout["events"] == {LOGOUT_EVENT: {}} and "nonce" not in logout
    content_type, body = events.bodies[0]
    assert content_type == "application/secevent+jwt"
    event = pyjwt.decode(body.decode(), key, algorithms=["RS256"], audience=shop.client_id,
                         issuer=ISSUER)
    assert event["sub_id"]["sub"] == id_claims["sub"]
    assert event["events"][CREDENTIAL_CHANGE]["change_type"] == "revoke"


def test_outbox_interval_may_not_exceed_the_revocation_bound(database_url: str) -> None:
    """Requirement 32: a missed wake-up is caught by the dispatcher's periodic pass, so that
    pass may not be slower than the bound; the account-delete policy is one of two words."""
    with pytest.raises(ValidationError, match="outbox_interval_seconds"):
        make_settings(database_url, outbox_interval_seconds=61)
    with pytest.raises(ValidationError, match="outbox_interval_seconds"):
        make_settings(database_url, upstream_revocation_max_delay_seconds=5,
                      outbox_interval_seconds=5.5)
    edge = make_settings(database_url, upstream_revocation_max_delay_seconds=5,
                         outbox_interval_seconds=5)
    assert edge.outbox_interval_seconds == 5
    assert make_settings(database_url).upstream_account_delete_policy == "deactivate"
    with pytest.raises(ValidationError, match="upstream_account_delete_policy"):
        make_settings(database_url, upstream_account_delete_policy="delete")

