"""Sign-in methods in the account center (issue 4 item 5): connect and remove Google and
Facebook identities, confirm who you are first, and never lose the last way in. Requirement
numbers refer to federation.md §9; Google and Facebook are the fakes of tests/fakes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from idp.notifications.dispatcher import Dispatcher
from idp.services.context import Context
from idp.services.senders import outbox_senders
from idp.services.signin import security_events
from idp.services.signin.interaction import LOGIN_FAILED
from idp.services.signin.reauth import safe_next
from idp.store.models import Identity, User
from tests.conftest import FakeClock
from tests.fakes.common import transport
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle
from tests.flows import continue_with_facebook, facebook_user, sign_in_with_google
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    csrf_token,
    get_code,
    make_app,
    make_user,
    query_of,
    redeem,
    unverified_account_signed_in,
    walk,
)
from tests.helpers import unverified_claims as claims
from tests.receiver import Receiver
from tests.upstreams import Browsers

SESSION = "__Host-idp_session"
BOB = "bob@example.com"


@pytest.fixture
async def both(ctx: Context, google: FakeGoogle, facebook: FakeFacebook
               ) -> tuple[FakeGoogle, FakeFacebook]:
    """Google and Facebook configured together, each answered by its fake."""
    ctx.upstream_transport = transport(google, facebook)
    return google, facebook


def identities_token(page: httpx.Response) -> str:
    match = re.search(r'action="/account/identities/[^"]+">\s*<input type="hidden" '
                      r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "no sign-in methods form"
    return match.group(1)


def status_of(page: httpx.Response) -> str:
    match = re.search(r'id="sign-in-status">([^<]*)<', page.text)
    return match.group(1) if match else ""


async def start_connect(browser: httpx.AsyncClient, alias: str) -> httpx.Response:
    security = await browser.get("/account/security")
    assert security.status_code == 200
    return await browser.post("/account/identities/link", data={
        "csrf_token": identities_token(security), "alias": alias})


async def connect(browser: httpx.AsyncClient, alias: str) -> httpx.Response:
    """Press "Connect <alias>" and follow the round trip back to the account center."""
    started = await start_connect(browser, alias)
    assert started.status_code == 303
    assert not started.headers["location"].startswith("/account/reauth")
    page = await walk(browser, started)
    assert urlsplit(str(page.url)).path == "/account/security", page.text
    return page


async def remove(browser: httpx.AsyncClient, identity_id: str) -> httpx.Response:
    security = await browser.get("/account/security")
    return await browser.post(f"/account/identities/{identity_id}/remove",
                              data={"csrf_token": identities_token(security)})


async def identities_of(ctx: Context, user_id: str) -> list[Identity]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(Identity).where(Identity.user_id == user_id)))


async def user_by_email(ctx: Context, email: str) -> User:
    async with ctx.db.transaction() as session:
        user = await session.scalar(select(User).where(User.email == email))
    assert user is not None
    return user


async def events(ctx: Context, user_id: str) -> list[tuple[str, dict[str, object]]]:
    async with ctx.db.transaction() as session:
        found = await security_events.events_of_user(session, user_id)
    return [(e.kind, dict(e.detail)) for e in found]


async def google_account(browser: httpx.AsyncClient, ctx: Context) -> str:
    """A password-less account, made by signing in with Google through a brand app."""
    shop = await make_app(ctx, name="Shop")
    flow, code = await sign_in_with_google(browser, shop)
    return str(claims((await redeem(browser, flow, code)).json()["id_token"])["sub"])


async def test_connect_google_then_sign_in_with_it(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Issue 4 item 5: the customer connects Google from the account center; afterwards that
    Google account signs them in to this very account. The link is a security event."""
    alice = await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    security = await laptop.get("/account/security")
    assert "Sign-in methods" in security.text and 'data-method="password"' in security.text
    assert "Connect Google" in security.text
    started = await start_connect(laptop, "google")
    assert started.headers["location"].startswith(google.url("/o/oauth2/v2/auth"))
    page = await walk(laptop, started)
    assert status_of(page) == "Your Google account is connected. You were signed out " \
                              "everywhere else."
    assert "alice@gmail.com" in page.text and "Connect Google" not in page.text
    [linked] = await identities_of(ctx, alice)
    assert (linked.namespace, linked.subject) == ("https://accounts.google.com",
                                                  google.users["gmail"].sub)
    assert f'data-identity="{linked.id}"' in page.text
    assert (security_events.IDENTITY_LINKED,
            {"alias": "google", "via": "account center"}) in await events(ctx, alice)
    assert (await laptop.get("/account")).status_code == 200  # this session stays
    # Google alone now signs the customer in to the same account, from another browser.
    phone = browsers(google)
    shop = await make_app(ctx)
    flow, code = await sign_in_with_google(phone, shop)
    assert claims((await redeem(phone, flow, code)).json()["id_token"])["sub"] == alice


async def test_stale_session_confirms_with_the_password_first(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Requirement 25: linking needs a sign-in within `recent_auth_seconds`; an older session
    is sent to /account/reauth, where a wrong password answers like a failed login and the
    right one starts a fresh session and returns to `next`."""
    alice = await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    started = await start_connect(laptop, "google")
    assert started.status_code == 303
    assert started.headers["location"] == "/account/reauth?next=%2Faccount%2Fsecurity"
    assert not any(e.path == "/o/oauth2/v2/auth" for e in google.log.entries)
    page = await laptop.get(started.headers["location"])
    assert page.status_code == 200 and 'name="password"' in page.text
    assert 'name="next" value="/account/security"' in page.text
    old_cookie = laptop.cookies.get(SESSION)
    wrong = await laptop.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": "/account/security",
        "password": "not it"})
    assert wrong.status_code == 200 and LOGIN_FAILED in wrong.text
    assert laptop.cookies.get(SESSION) == old_cookie
    confirmed = await laptop.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": "/account/security",
        "password": PASSWORD})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/account/security"
    assert laptop.cookies.get(SESSION) not in (None, old_cookie)  # a new session id
    page = await connect(laptop, "google")
    assert status_of(page).startswith("Your Google account is connected.")
    assert len(await identities_of(ctx, alice)) == 1


async def test_password_less_account_confirms_with_its_upstream(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Requirement 25 without a password: the customer confirms with the connected Google
    account (a "reauth" round trip); another Google account does not count."""
    browser = browsers(google)
    user_id = await google_account(browser, ctx)
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    page = await browser.get("/account/reauth", params={"next": "/account"})
    assert 'name="password"' not in page.text and "Continue with Google" in page.text
    # A different Google account comes back: refused, nothing refreshed.
    google.login_user = "consumer"
    other = await walk(browser, await browser.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": "/account", "upstream": "google"}))
    assert urlsplit(str(other.url)).path == "/account/reauth"
    assert "That Google account is not the one connected to this account." in other.text
    assert (await start_connect(browser, "google")).headers["location"].startswith(
        "/account/reauth")
    # The connected one: a fresh session, back at `next`.
    google.login_user = "gmail"
    before = browser.cookies.get(SESSION)
    back = await walk(browser, await browser.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": "/account", "upstream": "google"}))
    assert urlsplit(str(back.url)).path == "/account" and back.status_code == 200
    assert browser.cookies.get(SESSION) not in (None, before)
    # Recently authenticated now: connecting the same Google account says it already is.
    page = await connect(browser, "google")
    assert status_of(page) == "This Google account is already connected to your account."
    assert len(await identities_of(ctx, user_id)) == 1


async def test_link_callback_in_another_browser_links_nothing(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Requirement 25: the link transaction is bound to the browser that began it; its
    callback delivered to another browser is refused before any token request, links
    nothing, and cannot be replayed afterwards."""
    alice = await make_user(ctx)
    await make_user(ctx, email=BOB)
    laptop, attacker = browsers(google), browsers(google)
    await account_sign_in(laptop)
    await account_sign_in(attacker, BOB)
    at_google = await laptop.get((await start_connect(laptop, "google")).headers["location"])
    callback = at_google.headers["location"]
    refused = await attacker.get(callback)
    assert refused.status_code == 400 and "Nothing was changed" in refused.text
    assert (await laptop.get(callback)).status_code == 400  # single use
    assert not any(e.path == "/token" for e in google.log.entries)
    assert await identities_of(ctx, alice) == []
    assert await identities_of(ctx, (await user_by_email(ctx, BOB)).id) == []


async def test_link_callback_with_another_accounts_session_links_nothing(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Requirement 25: same browser, but the session at the callback belongs to another
    account than the one the link began for: nothing is linked to either."""
    alice = await make_user(ctx)
    bob = await make_user(ctx, email=BOB)
    laptop = browsers(google)
    await account_sign_in(laptop)
    at_google = await laptop.get((await start_connect(laptop, "google")).headers["location"])
    await account_sign_in(laptop, BOB)  # the browser now holds Bob's session
    refused = await laptop.get(at_google.headers["location"])
    assert refused.status_code == 400 and "Nothing was changed" in refused.text
    assert not any(e.path == "/token" for e in google.log.entries)
    assert await identities_of(ctx, alice) == [] and await identities_of(ctx, bob) == []
    # Without any session at the callback: refused too.
    at_google = await laptop.get((await start_connect(laptop, "google")).headers["location"])
    laptop.cookies.delete(SESSION)
    assert (await laptop.get(at_google.headers["location"])).status_code == 400
    assert await identities_of(ctx, bob) == []


async def test_identity_of_another_account_is_not_linked(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Requirement 15: a Google account already connected to another account is refused
    with a clear message; one connected to this account is "already connected"."""
    owner = await google_account(browsers(google), ctx)
    alice = await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    page = await connect(laptop, "google")
    assert status_of(page) == "This Google account is already connected to another account."
    assert await identities_of(ctx, alice) == []
    assert len(await identities_of(ctx, owner)) == 1
    google.login_user = "consumer"
    assert status_of(await connect(laptop, "google")).startswith("Your Google account is")
    assert status_of(await connect(laptop, "google")) == (
        "This Google account is already connected to your account.")
    assert len(await identities_of(ctx, alice)) == 1


async def test_remove_an_identity_but_never_the_last_method(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Issue 4 item 5: removing needs recent authentication and CSRF; the last way to sign in
    cannot be removed; another account's identity cannot be named."""
    browser = browsers(google)
    user_id = await google_account(browser, ctx)  # no password: Google is its only way in
    [gmail] = await identities_of(ctx, user_id)
    refused = await remove(browser, gmail.id)
    assert refused.status_code == 303
    page = await walk(browser, refused)
    assert status_of(page) == "Google is your only way to sign in, so it cannot be removed."
    assert len(await identities_of(ctx, user_id)) == 1
    google.login_user = "consumer"
    await connect(browser, "google")
    second = next(i for i in await identities_of(ctx, user_id) if i.id != gmail.id)
    # Another account's identity id is refused.
    await make_user(ctx)
    other = browsers(google)
    await account_sign_in(other)
    assert (await remove(other, second.id)).status_code == 400
    # A stale session is sent to confirm first.
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    stale = await remove(browser, second.id)
    assert stale.headers["location"] == "/account/reauth?next=%2Faccount%2Fsecurity"
    assert len(await identities_of(ctx, user_id)) == 2
    clock.advance(-ctx.settings.recent_auth_seconds - 1)
    page = await walk(browser, await remove(browser, second.id))
    assert status_of(page).startswith("Google is removed from your sign-in methods.")
    assert [i.id for i in await identities_of(ctx, user_id)] == [gmail.id]
    assert (security_events.IDENTITY_UNLINKED, {"alias": "google"}) in await events(ctx, user_id)
    page = await walk(browser, await remove(browser, gmail.id))
    assert "cannot be removed" in status_of(page)
    # The removed Google account no longer signs in to this account.
    fresh = browsers(google)
    google.login_user = "consumer"
    assert await google_account(fresh, ctx) != user_id


async def test_removing_the_identity_this_browser_signed_in_with(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Removal ends every session signed in with the identity (another browser's too); this
    browser, whose customer just confirmed who they are, continues in a new session."""
    laptop = browsers(google)
    user_id = await google_account(laptop, ctx)  # this session signed in with Google
    [gmail] = await identities_of(ctx, user_id)
    phone = browsers(google)
    await google_account(phone, ctx)  # the same Google account, another browser
    google.login_user = "consumer"
    await connect(laptop, "google")  # ends the phone's session (requirement 24)
    google.login_user = "gmail"
    await google_account(phone, ctx)  # signed in with the gmail identity again
    before = laptop.cookies.get(SESSION)
    page = await walk(laptop, await remove(laptop, gmail.id))
    assert status_of(page).startswith("Google is removed")
    assert laptop.cookies.get(SESSION) not in (None, before)
    assert (await phone.get("/account")).headers["location"] == "/account/login"
    assert [i.id for i in await identities_of(ctx, user_id)] != [gmail.id]


async def test_linking_and_unlinking_sign_out_everywhere_else(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Requirement 24: linking and unlinking each end every other session of the account (its
    apps get a back-channel logout token) and revoke every refresh token of the account,
    offline ones included; the session that made the change stays."""
    receiver = Receiver()
    await receiver.start()
    await make_user(ctx)
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         scopes=["openid", "offline_access"], backchannel_logout_uri=receiver.url)
    dispatcher = Dispatcher(ctx, timeout=2, senders=outbox_senders, allow_private=True)
    laptop = browsers(google)
    await account_sign_in(laptop)

    async def phone_signs_in() -> tuple[httpx.AsyncClient, dict[str, str]]:
        phone = browsers()
        flow = Flow(app)
        code = await get_code(phone, flow, scope="openid offline_access")
        return phone, (await redeem(phone, flow, code)).json()

    async def signed_out(phone: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        refreshed = await phone.post("/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            headers=app.basic())
        assert refreshed.json()["error"] == "invalid_grant"
        again = await phone.get("/authorize", params=Flow(app).params(scope="openid"))
        assert urlsplit(again.headers["location"]).path.endswith("/login")
        assert (await laptop.get("/account")).status_code == 200

    try:
        phone, tokens = await phone_signs_in()
        await connect(laptop, "google")
        await signed_out(phone, tokens)
        assert await dispatcher.run_once() == 1
        phone, tokens = await phone_signs_in()
        [linked] = await identities_of(ctx, (await user_by_email(ctx, "alice@example.com")).id)
        await walk(laptop, await remove(laptop, linked.id))
        await signed_out(phone, tokens)
        # The phone's logout token, and Google asked to revoke the token kept for the
        # removed identity (PRIV-08: the link is gone, so is our access at Google).
        assert await dispatcher.run_once() == 2
        assert len(google.revoked) == 1
    finally:
        await dispatcher.close()
        await receiver.stop()
    assert len(receiver.received) == 2
    for body in receiver.received:
        assert claims(body["logout_token"][0])["aud"] == app.client_id


async def test_trojan_identity_is_removed_when_the_victim_proves_the_address(
        ctx: Context, both: tuple[FakeGoogle, FakeFacebook], browsers: Browsers) -> None:
    """Requirement 26 (trojan identifier): the attacker pre-registers the victim's Gmail
    address with a password and connects their own Facebook account to it; when the victim
    signs in with Google (authoritative for gmail.com), that Facebook identity is removed,
    and it no longer signs in to the victim's account."""
    google, facebook = both
    shop = await make_app(ctx)
    attacker = browsers(google, facebook)
    # An account nobody proved the address of (registration through the pages proves it).
    await unverified_account_signed_in(ctx, attacker, shop, "alice@gmail.com",
                                       "attacker password 1")
    planted = await connect(attacker, "facebook")
    assert status_of(planted).startswith("Your Facebook account is connected.")
    account = await user_by_email(ctx, "alice@gmail.com")
    assert len(await identities_of(ctx, account.id)) == 1
    victim = browsers(google)
    flow, code = await sign_in_with_google(victim, shop)
    victim_sub = claims((await redeem(victim, flow, code)).json()["id_token"])["sub"]
    assert victim_sub == account.id
    [kept] = await identities_of(ctx, account.id)
    assert kept.namespace == "https://accounts.google.com"
    assert (security_events.IDENTITY_UNLINKED,
            {"alias": "facebook", "reason": "unverified_account"}) in await events(ctx,
                                                                                 account.id)
    # The attacker's Facebook login now lands anywhere but in the victim's account.
    attacker.cookies.clear()
    flow, done = await continue_with_facebook(attacker, shop)
    tokens = (await redeem(attacker, flow, query_of(done.headers["location"])["code"])).json()
    assert claims(tokens["id_token"])["sub"] != victim_sub


async def test_forms_without_csrf_are_refused(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Every form carries a CSRF token bound to the browser: none, or another browser's, is
    refused and changes nothing."""
    alice = await make_user(ctx)
    laptop, other = browsers(google), browsers(google)
    await account_sign_in(laptop)
    await connect(laptop, "google")
    [linked] = await identities_of(ctx, alice)
    await account_sign_in(other, "alice@example.com")
    foreign = identities_token(await other.get("/account/security"))
    for token in (None, "", foreign):
        data = {"alias": "google"} | ({"csrf_token": token} if token is not None else {})
        assert (await laptop.post("/account/identities/link", data=data)).status_code == 403
        assert (await laptop.post(f"/account/identities/{linked.id}/remove",
                                  data=data)).status_code == 403
        assert (await laptop.post("/account/reauth", data={
            **data, "password": PASSWORD})).status_code == 403
    assert len(await identities_of(ctx, alice)) == 1
    assert sum(e.path == "/o/oauth2/v2/auth" for e in google.log.entries) == 1


@pytest.mark.parametrize("attempt", [
    "https://evil.example/account", "//evil.example/account", "/\\evil.example",
    "/accountevil", "/account/../logout", "/logout", "javascript:alert(1)", "",
    "/account/\r\nLocation: https://evil.example",
])
async def test_next_never_leaves_the_account_center(
        ctx: Context, google: FakeGoogle, browsers: Browsers, attempt: str) -> None:
    """`next` of /account/reauth: only a relative path under /account; anything else lands on
    /account (no open redirect)."""
    await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    page = await laptop.get("/account/reauth", params={"next": attempt})
    assert 'name="next" value="/account"' in page.text
    confirmed = await laptop.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": attempt, "password": PASSWORD})
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account"


def test_next_keeps_account_paths() -> None:
    assert safe_next("/account/apps/shop?x=1#top") == "/account/apps/shop?x=1#top"
    assert safe_next("/account") == "/account"
    assert safe_next(None) == "/account"


async def test_reauth_page_needs_a_session(browsers: Browsers, ctx: Context) -> None:
    anonymous = browsers()
    response = await anonymous.get("/account/reauth", params={"next": "/account"})
    assert response.status_code == 303 and response.headers["location"] == "/account/login"


# -- Re-authentication must be fresh at the upstream (security review, finding 1) -----------

FAILED = "Connecting with Google did not work. Nothing changed; try again."
REAUTH_FAILED = ("Confirming with Google did not work: Google has to ask for your sign-in "
                 "again. Try again.")


async def reauth_with(browser: httpx.AsyncClient, alias: str,
                      next_path: str = "/account") -> httpx.Response:
    """Press "Continue with <alias>" on /account/reauth and follow the round trip."""
    page = await browser.get("/account/reauth", params={"next": next_path})
    return await walk(browser, await browser.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": next_path, "upstream": alias}))


async def still_stale(browser: httpx.AsyncClient) -> None:
    """Deleting the account and connecting a method both still ask to confirm first."""
    deletion = await browser.get("/account/delete")
    assert deletion.status_code == 303
    assert deletion.headers["location"] == "/account/reauth?next=/account/delete"
    assert (await start_connect(browser, "google")).headers["location"] == (
        "/account/reauth?next=%2Faccount%2Fsecurity")


async def test_reauth_makes_google_authenticate_again(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Requirement 25: a live Google session in this browser does not confirm the customer.
    The reauth request carries OIDC Core's max_age=0 (Google refuses prompt=login, §1.2), the
    customer signs in at Google again, and the fresh auth_time gives a fresh session."""
    browser = browsers(google)
    await google_account(browser, ctx)  # Google's session here began an hour ago
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    before = browser.cookies.get(SESSION)
    back = await reauth_with(browser, "google")
    request = google.log.calls("/o/oauth2/v2/auth")[-1].params
    assert request["max_age"] == "0" and "prompt" not in request
    assert google.signed_in_at["gmail"] == clock()  # signed in at Google again, now
    assert urlsplit(str(back.url)).path == "/account" and back.status_code == 200
    assert browser.cookies.get(SESSION) not in (None, before)
    assert (await browser.get("/account/delete")).status_code == 200


async def test_reauth_refuses_an_upstream_authentication_older_than_the_round_trip(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Requirement 25: an ID token whose auth_time predates the reauth (an upstream that
    ignored max_age, or an earlier login's response) is refused: "did not work", the session
    is not refreshed, and deleting or connecting still asks to confirm first."""
    browser = browsers(google)
    await google_account(browser, ctx)
    google.ignore_reauth = True
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    before = browser.cookies.get(SESSION)
    refused = await reauth_with(browser, "google")
    assert google.log.calls("/token")  # the ID token came, and was refused
    assert urlsplit(str(refused.url)).path == "/account/reauth"
    assert REAUTH_FAILED in refused.text
    assert browser.cookies.get(SESSION) == before
    await still_stale(browser)


async def test_reauth_refuses_an_id_token_without_auth_time(
        ctx: Context, google: FakeGoogle, browsers: Browsers, clock: FakeClock) -> None:
    """Requirement 25, OIDC Core §2: auth_time is required once max_age was sent; a token
    without it proves no fresh sign-in and is refused, changing nothing."""
    browser = browsers(google)
    await google_account(browser, ctx)
    google.claims_hook = lambda c: {k: v for k, v in c.items() if k != "auth_time"}
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    before = browser.cookies.get(SESSION)
    refused = await reauth_with(browser, "google")
    assert REAUTH_FAILED in refused.text and browser.cookies.get(SESSION) == before
    await still_stale(browser)


async def test_connect_refuses_an_old_upstream_authentication(
        ctx: Context, google: FakeGoogle, browsers: Browsers) -> None:
    """Requirement 25: connecting also asks Google to authenticate again, so whichever
    Google account this browser happens to be signed in to is not linked silently."""
    alice = await make_user(ctx)
    laptop = browsers(google)
    await account_sign_in(laptop)
    google.ignore_reauth = True
    page = await walk(laptop, await start_connect(laptop, "google"))
    assert google.log.calls("/o/oauth2/v2/auth")[-1].params["max_age"] == "0"
    assert status_of(page) == FAILED
    assert await identities_of(ctx, alice) == []


async def test_facebook_reauth_asks_for_the_password_again(
        ctx: Context, both: tuple[FakeGoogle, FakeFacebook], browsers: Browsers,
        clock: FakeClock) -> None:
    """Requirement 25: the Facebook dialog of a reauth carries auth_type=reauthenticate
    (Facebook asks for the password again; the classic flow's answer cannot show it did, so
    this is all we can do); a plain sign-in does not."""
    google, facebook = both
    browser = browsers(google, facebook)
    await facebook_user(browser, ctx)  # a password-less Facebook account
    assert facebook.auth_types == [""]
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    before = browser.cookies.get(SESSION)
    back = await reauth_with(browser, "facebook")
    assert facebook.auth_types == ["", "reauthenticate"]
    assert urlsplit(str(back.url)).path == "/account"
    assert browser.cookies.get(SESSION) not in (None, before)
