"""RP-Initiated Logout 1.0, Back-Channel Logout 1.0 through the outbox, and session ends."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt
import pytest

from idp.notifications.dispatcher import Dispatcher, backoff
from idp.services.context import Context
from idp.services.signin.sessions import end_user_sessions
from tests.conftest import ISSUER, FakeClock
from tests.helpers import App, Flow, csrf_token, get_code, make_app, make_user, redeem
from tests.receiver import Receiver

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
AFTER_LOGOUT = "https://app.example/signed-out"


async def sign_in(browser: httpx.AsyncClient, app: App, scope: str = "openid profile"
                  ) -> dict[str, str]:
    flow = Flow(app)
    code = await get_code(browser, flow, scope=scope)
    response = await redeem(browser, flow, code)
    assert response.status_code == 200, response.text
    return response.json()


async def active(http: httpx.AsyncClient, api: App, token: str) -> bool:
    response = await http.post("/introspect", data={"token": token}, headers=api.basic())
    return bool(response.json()["active"])


@pytest.fixture
async def api(ctx: Context) -> App:
    return await make_app(ctx, name="API", grant_types=["client_credentials"],
                          scopes=["orders:read"])


@pytest.fixture
async def shop(ctx: Context) -> App:
    await make_user(ctx)
    return await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          scopes=["openid", "profile", "offline_access"],
                          post_logout_redirect_uris=[AFTER_LOGOUT])


async def test_logout_with_matching_hint_ends_the_session_and_redirects(
        client: httpx.AsyncClient, shop: App, api: App) -> None:
    tokens = await sign_in(client, shop)
    response = await client.get("/logout", params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "xyz"})
    assert response.status_code == 303
    assert response.headers["location"] == f"{AFTER_LOGOUT}?state=xyz"
    assert "__Host-idp_session=" in response.headers["set-cookie"]
    assert 'Max-Age=0' in response.headers["set-cookie"] or "expires=" in (
        response.headers["set-cookie"].lower())
    # The browser must sign in again, and the session's tokens are dead.
    again = await client.get("/authorize", params=Flow(shop).params(scope="openid profile"))
    assert urlsplit(again.headers["location"]).path.endswith("/login")
    assert not await active(client, api, tokens["access_token"])


async def test_an_expired_id_token_hint_is_still_accepted(
        client: httpx.AsyncClient, ctx: Context, shop: App, clock: FakeClock) -> None:
    tokens = await sign_in(client, shop)
    clock.advance(ctx.settings.id_token_ttl + 60)
    response = await client.get("/logout", params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT})
    assert response.status_code == 303
    assert response.headers["location"] == AFTER_LOGOUT


@pytest.mark.parametrize("uri", [AFTER_LOGOUT + "/", "https://evil.example/",
                                 AFTER_LOGOUT.upper(), AFTER_LOGOUT + "?x=1",
                                 # urlsplit would drop these: compared as written, they differ.
                                 AFTER_LOGOUT.replace("/signed", "/\tsigned"),
                                 AFTER_LOGOUT + "\n", "\r" + AFTER_LOGOUT, AFTER_LOGOUT + "?",
                                 AFTER_LOGOUT.replace("app", "\u0430pp")])
async def test_unregistered_post_logout_redirect_uri_is_never_followed(
        client: httpx.AsyncClient, shop: App, uri: str) -> None:
    tokens = await sign_in(client, shop)
    response = await client.get("/logout", params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri})
    assert response.status_code == 400
    assert "location" not in response.headers
    # The session was not ended by the refused request.
    again = await client.get("/authorize", params=Flow(shop).params(scope="openid profile"))
    assert "code=" in again.headers["location"]


async def test_redirect_uri_without_a_client_is_refused(client: httpx.AsyncClient,
                                                        shop: App) -> None:
    response = await client.get("/logout", params={"post_logout_redirect_uri": AFTER_LOGOUT})
    assert response.status_code == 400


async def test_forged_hint_is_refused(client: httpx.AsyncClient, shop: App) -> None:
    tokens = await sign_in(client, shop)
    header, payload, _ = tokens["id_token"].split(".")
    response = await client.get("/logout", params={"id_token_hint": f"{header}.{payload}.AAAA"})
    assert response.status_code == 400


async def test_client_id_must_match_the_hint(client: httpx.AsyncClient, ctx: Context,
                                             shop: App) -> None:
    other = await make_app(ctx, name="Other")
    tokens = await sign_in(client, shop)
    response = await client.get("/logout", params={"id_token_hint": tokens["id_token"],
                                                   "client_id": other.client_id})
    assert response.status_code == 400


async def test_logout_without_proof_asks_for_confirmation(client: httpx.AsyncClient,
                                                          shop: App, api: App) -> None:
    tokens = await sign_in(client, shop)
    page = await client.get("/logout", params={"client_id": shop.client_id,
                                               "post_logout_redirect_uri": AFTER_LOGOUT})
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert await active(client, api, tokens["access_token"])  # nothing happened yet
    # A forged confirmation (no CSRF token) changes nothing.
    forged = await client.post("/logout/confirm", data={"decision": "logout",
                                                        "client_id": shop.client_id})
    assert forged.status_code == 403
    assert await active(client, api, tokens["access_token"])
    confirmed = await client.post("/logout/confirm", data={
        "csrf_token": csrf_token(page.text), "decision": "logout",
        "client_id": shop.client_id, "post_logout_redirect_uri": AFTER_LOGOUT})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == AFTER_LOGOUT
    assert not await active(client, api, tokens["access_token"])


async def test_staying_signed_in_changes_nothing(client: httpx.AsyncClient, shop: App,
                                                 api: App) -> None:
    tokens = await sign_in(client, shop)
    page = await client.get("/logout")
    stay = await client.post("/logout/confirm", data={"csrf_token": csrf_token(page.text),
                                                      "decision": "stay"})
    assert stay.status_code == 200
    assert await active(client, api, tokens["access_token"])


async def test_logout_keeps_offline_refresh_tokens_only(client: httpx.AsyncClient,
                                                        shop: App, api: App) -> None:
    offline = await sign_in(client, shop, scope="openid offline_access")
    response = await client.get("/logout", params={"id_token_hint": offline["id_token"]})
    assert response.status_code == 200
    assert "You are signed out" in response.text
    assert not await active(client, api, offline["access_token"])
    refreshed = await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": offline["refresh_token"]},
        headers=shop.basic())
    assert refreshed.status_code == 200


async def test_logout_revokes_session_bound_refresh_tokens(client: httpx.AsyncClient,
                                                           ctx: Context) -> None:
    await make_user(ctx)
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         long_sessions=True)
    tokens = await sign_in(client, app)
    await client.get("/logout", params={"id_token_hint": tokens["id_token"]})
    refreshed = await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=app.basic())
    assert refreshed.json()["error"] == "invalid_grant"


async def test_backchannel_logout_reaches_an_app_that_was_down(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    receiver = Receiver()
    await make_user(ctx)
    app = await make_app(ctx, backchannel_logout_uri=receiver.url)
    quiet = await make_app(ctx, name="No back-channel", redirect_uri="https://app.example/quiet")
    tokens = await sign_in(client, app)
    await sign_in(client, quiet)
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        # The receiver is down when the customer signs out: the logout still completes.
        response = await client.get("/logout", params={"id_token_hint": tokens["id_token"]})
        assert response.status_code == 200
        assert await dispatcher.run_once() == 0
        assert receiver.received == []
        # Not retried before its backoff is due.
        assert await dispatcher.run_once() == 0
        await receiver.start()
        clock.advance(backoff(1))
        assert await dispatcher.run_once() == 1
        # Exactly once: nothing more is sent later.
        clock.advance(3600)
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.close()
        await receiver.stop()
    assert len(receiver.received) == 1
    logout_token = receiver.received[0]["logout_token"][0]
    header = pyjwt.get_unverified_header(logout_token)
    assert header["typ"] == "logout+jwt"
    jwks = (await client.get("/jwks")).json()
    key = pyjwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    # The injected clock ran ahead of the wall clock for the retry: allow for it in iat.
    claims = pyjwt.decode(logout_token, key.key, algorithms=["RS256"], audience=app.client_id,
                          issuer=ISSUER, leeway=backoff(1) + 5)
    id_claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sub"] == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"]
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert claims["jti"]


async def test_app_rejecting_the_token_is_not_retried(client: httpx.AsyncClient, ctx: Context,
                                                      clock: FakeClock) -> None:
    receiver = Receiver(status=400)
    await receiver.start()
    await make_user(ctx)
    app = await make_app(ctx, backchannel_logout_uri=receiver.url)
    tokens = await sign_in(client, app)
    await client.get("/logout", params={"id_token_hint": tokens["id_token"]})
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        assert await dispatcher.run_once() == 0
        clock.advance(3600)
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.close()
        await receiver.stop()
    assert len(receiver.received) == 1


async def test_operator_ends_every_session_of_a_customer(
        new_browser, ctx: Context, shop: App, api: App) -> None:  # type: ignore[no-untyped-def]
    phone, laptop = new_browser(), new_browser()
    first = await sign_in(phone, shop)
    second = await sign_in(laptop, shop)
    assert await end_user_sessions(ctx, "alice@example.com") == 2
    for tokens in (first, second):
        assert not await active(phone, api, tokens["access_token"])
    again = await phone.get("/authorize", params=Flow(shop).params(scope="openid profile"))
    assert urlsplit(again.headers["location"]).path.endswith("/login")
    assert await end_user_sessions(ctx, "nobody@example.com") is None


async def test_discovery_advertises_logout(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert meta["end_session_endpoint"] == f"{ISSUER}/logout"
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n) for n in range(1, 15)]
    assert delays[:4] == [1, 2, 4, 8]
    assert max(delays) == 300


async def test_password_change_signs_out_everywhere_else(
        new_browser, ctx: Context, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    """Issue 3, item 7: a password change ends the account's sessions, and their apps are told."""
    receiver = Receiver()
    await receiver.start()
    await make_user(ctx)
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         scopes=["openid", "offline_access"], backchannel_logout_uri=receiver.url)
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    phone, laptop = new_browser(), new_browser()
    on_phone = await sign_in(phone, app, scope="openid offline_access")
    page = await laptop.get("/account/login")
    await laptop.post("/account/login", data={"csrf_token": csrf_token(page.text),
                                              "email": "alice@example.com",
                                              "password": "correct horse battery staple"})
    overview = await laptop.get("/account/security")
    token = re.search(r'action="/account/password">\s*<input type="hidden" name="csrf_token" '
                      r'value="([^"]+)"', overview.text).group(1)
    wrong = await laptop.post("/account/password", data={
        "csrf_token": token, "current_password": "nope", "new_password": "a new long passphrase"})
    assert "Your current password is not correct." in wrong.text
    assert await active(phone, api, on_phone["access_token"])
    changed = await laptop.post("/account/password", data={
        "csrf_token": token, "current_password": "correct horse battery staple",
        "new_password": "a new long passphrase"})
    assert changed.status_code == 303
    assert "idp_session=" in changed.headers["set-cookie"]  # a new session for this browser
    assert (await laptop.get("/account")).status_code == 200
    # The phone's session, its tokens, and even its offline refresh token are gone.
    assert not await active(phone, api, on_phone["access_token"])
    refreshed = await phone.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": on_phone["refresh_token"]},
        headers=app.basic())
    assert refreshed.json()["error"] == "invalid_grant"
    again = await phone.get("/authorize", params=Flow(app).params(scope="openid"))
    assert urlsplit(again.headers["location"]).path.endswith("/login")
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        assert await dispatcher.run_once() == 1
    finally:
        await dispatcher.close()
        await receiver.stop()
    assert len(receiver.received) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_valid_hint_of_another_customer_asks_and_ends_nothing(
        new_browser, ctx: Context, shop: App, api: App, method: str) -> None:  # type: ignore[no-untyped-def]
    """RP-Initiated Logout 1.0 §2 and the README: the session ends without a question only
    when the id_token_hint names this browser's session. Bob's genuine ID token presented in
    Alice's browser (a site that holds one of Bob's tokens, or an app that mixed its users up)
    gets the confirmation page: no logout, no redirect to the app, no cookie cleared. Alice's
    session still signs her in to another app silently, and her tokens, the session-bound
    refresh token included, still work; Bob's session is untouched as well."""
    await make_user(ctx, email="bob@example.com")
    club = await make_app(ctx, name="Club", redirect_uri="https://app.example/club",
                          grant_types=["authorization_code", "refresh_token"],
                          long_sessions=True, post_logout_redirect_uris=[AFTER_LOGOUT])
    alice_browser, bob_browser = new_browser(), new_browser()
    alice = await sign_in(alice_browser, club)
    await sign_in(alice_browser, shop)  # Alice has agreed to the shop as well
    flow = Flow(club)
    code = await get_code(bob_browser, flow, email="bob@example.com", scope="openid profile")
    bob = (await redeem(bob_browser, flow, code)).json()
    alice_id = pyjwt.decode(alice["id_token"], options={"verify_signature": False})
    bob_id = pyjwt.decode(bob["id_token"], options={"verify_signature": False})
    assert alice_id["sub"] != bob_id["sub"] and alice_id["sid"] != bob_id["sid"]

    params = {"id_token_hint": bob["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT,
              "state": "xyz"}
    if method == "GET":
        page = await alice_browser.get("/logout", params=params)
    else:
        page = await alice_browser.post("/logout", data=params)
    assert page.status_code == 200
    assert "Sign out?" in page.text
    assert "location" not in page.headers
    assert "idp_session" not in page.headers.get("set-cookie", "")

    # Alice's session signs her in to the shop without a page (prompt=none), as Alice.
    silent = Flow(shop)
    answer = await alice_browser.get("/authorize", params=silent.params(
        scope="openid profile", prompt="none"))
    assert answer.status_code == 303
    location = httpx.URL(answer.headers["location"])
    assert str(location.copy_with(query=None)) == shop.redirect_uri
    assert "error" not in location.params
    tokens = await redeem(alice_browser, silent, location.params["code"])
    assert tokens.status_code == 200
    again = pyjwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert (again["sub"], again["sid"], again["auth_time"]) == (
        alice_id["sub"], alice_id["sid"], alice_id["auth_time"])
    # Alice's tokens from before still work: introspection, UserInfo, refresh.
    assert await active(alice_browser, api, alice["access_token"])
    info = await alice_browser.get("/userinfo", headers={
        "Authorization": f"Bearer {alice['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == alice_id["sub"]
    refreshed = await alice_browser.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": alice["refresh_token"]},
        headers=club.basic())
    assert refreshed.status_code == 200
    # Bob's session, which the hint named, was not ended from Alice's browser either.
    assert await active(bob_browser, api, bob["access_token"])
    bob_silent = await bob_browser.get("/authorize", params=Flow(club).params(
        scope="openid profile", prompt="none"))
    assert "code" in httpx.URL(bob_silent.headers["location"]).params
