"""The device authorization grant (RFC 8628, issue 13 items 1, 2 and 5): a device asks for a
code, the customer approves it on a phone, the device polls and gets tokens once.

The device's side is driven by authlib's OAuth 2.0 client (an independent implementation);
the phone is an httpx browser walking our pages (tests/test_browser_device.py does the same in
headless Chromium)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from idp.services.accounts import admin
from idp.services.consent import grants, purposes
from idp.services.context import Context
from idp.store.models import DeviceCode
from tests.conftest import ISSUER, FakeClock
from tests.helpers import (
    App,
    approve,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    make_user,
    unverified_claims,
)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPE = "openid profile offline_access"


async def tv_app(ctx: Context, name: str = "Living-room TV", **extra: Any) -> App:
    """A public client, as a device app is (it cannot keep a secret)."""
    extra.setdefault("scopes", ["openid", "profile", "email", "offline_access"])
    return await make_app(ctx, name=name, redirect_uri="com.example.tv:/cb",
                          client_type="public", application_type="native",
                          grant_types=[DEVICE_GRANT, "refresh_token"], **extra)


@pytest.fixture
async def device(app: Any) -> AsyncIterator[Any]:
    """A factory of authlib clients acting as devices."""
    opened: list[AsyncOAuth2Client] = []

    def factory(client: App, scope: str = SCOPE) -> AsyncOAuth2Client:
        oauth = AsyncOAuth2Client(
            client_id=client.client_id, client_secret=client.client_secret,
            token_endpoint_auth_method="none" if client.client_secret is None
            else "client_secret_basic", scope=scope,
            transport=httpx.ASGITransport(app=app), base_url=ISSUER)
        opened.append(oauth)
        return oauth

    yield factory
    for oauth in opened:
        await oauth.aclose()


async def ask(oauth: AsyncOAuth2Client, scope: str = SCOPE) -> dict[str, Any]:
    """RFC 8628 §3.1, as the device sends it."""
    data = {"client_id": oauth.client_id, "scope": scope}
    response = await oauth.request("POST", f"{ISSUER}/device_authorization", data=data,
                                   withhold_token=True)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def poll(oauth: AsyncOAuth2Client, device_code: str) -> dict[str, Any]:
    """One poll; authlib raises OAuthError for an error response."""
    token: dict[str, Any] = await oauth.fetch_token(
        f"{ISSUER}/token", grant_type=DEVICE_GRANT, device_code=device_code)
    return token


async def poll_error(oauth: AsyncOAuth2Client, device_code: str) -> tuple[str, str]:
    with pytest.raises(OAuthError) as refused:
        await poll(oauth, device_code)
    return refused.value.error, refused.value.description or ""


async def enter_code(phone: httpx.AsyncClient, user_code: str) -> httpx.Response:
    """The customer types the code on /device; the answer is the confirmation page."""
    page = await phone.get("/device")
    return await phone.post("/device", data={"csrf_token": csrf_token(page.text),
                                             "user_code": user_code})


async def confirm(phone: httpx.AsyncClient, page: httpx.Response, decision: str = "confirm"
                  ) -> httpx.Response:
    user_code = re.search(r'name="user_code" value="([^"]+)"', page.text)
    assert user_code, page.text
    response = await phone.post("/device/confirm", data={
        "csrf_token": csrf_token(page.text), "user_code": user_code.group(1),
        "decision": decision})
    return await follow_to_page(phone, response)


async def approve_on_phone(phone: httpx.AsyncClient, user_code: str) -> httpx.Response:
    """Enter, confirm, sign in, allow: the last page the phone shows."""
    page = await confirm(phone, await enter_code(phone, user_code))
    if urlsplit(str(page.url)).path.endswith("/login"):
        page = await login(phone, page)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await approve(phone, page)
    return await follow_to_page(phone, page)


def done_page_says_signed_in(page: httpx.Response) -> bool:
    return page.status_code == 200 and "Your device is signed in" in page.text


async def test_discovery_advertises_the_device_endpoint(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert metadata["device_authorization_endpoint"] == f"{ISSUER}/device_authorization"
    assert DEVICE_GRANT in metadata["grant_types_supported"]


async def test_a_device_is_approved_on_a_phone_and_redeems_its_code_once(
        ctx: Context, device: Any, new_browser: Any, clock: FakeClock) -> None:
    user_id = await make_user(ctx)
    tv = await tv_app(ctx)
    oauth = device(tv)
    started = await ask(oauth)
    # RFC 8628 §3.2 and §6.1: eight consonants shown as XXXX-XXXX.
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}",
                        started["user_code"])
    assert started["verification_uri"] == f"{ISSUER}/device"
    assert started["verification_uri_complete"] == (
        f"{ISSUER}/device?user_code={started['user_code']}")
    assert started["expires_in"] == 600 and started["interval"] == 5
    assert len(started["device_code"]) >= 32
    assert await poll_error(oauth, started["device_code"]) == (
        "authorization_pending", "The customer has not yet approved this device")

    phone = new_browser()
    # The complete URI fills the code in; the customer still confirms it (§5.4).
    form = await phone.get(urlsplit(started["verification_uri_complete"]).path
                           + "?" + urlsplit(started["verification_uri_complete"]).query)
    assert f'value="{started["user_code"]}"' in form.text
    page = await phone.post("/device", data={"csrf_token": csrf_token(form.text),
                                             "user_code": started["user_code"]})
    assert page.status_code == 200
    assert "Is this your device's code?" in page.text
    assert started["user_code"] in page.text
    assert "Living-room TV" in page.text and tv.client_id in page.text
    page = await confirm(phone, page)
    assert urlsplit(str(page.url)).path.endswith("/login")
    page = await approve(phone, await login(phone, page))
    assert done_page_says_signed_in(page)

    clock.advance(5)
    token = await poll(oauth, started["device_code"])
    assert token["token_type"] == "Bearer"
    assert token["scope"] == SCOPE
    access = unverified_claims(token["access_token"])
    assert access["sub"] == user_id and access["client_id"] == tv.client_id
    assert "sid" not in access  # the phone's browser session does not own the device's tokens
    id_token = unverified_claims(token["id_token"])
    assert id_token["aud"] == tv.client_id and id_token["sub"] == user_id
    assert id_token["amr"] == ["pwd"] and "nonce" not in id_token
    assert "refresh_token" in token
    # Once only.
    clock.advance(5)
    assert await poll_error(oauth, started["device_code"]) == (
        "invalid_grant", "The device code was already used")
    # UserInfo answers the device's token.
    userinfo = await oauth.request("GET", f"{ISSUER}/userinfo", withhold_token=True,
                                   headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == user_id


async def test_polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval(
        ctx: Context, device: Any, clock: FakeClock) -> None:
    oauth = device(await tv_app(ctx))
    code = (await ask(oauth))["device_code"]
    assert (await poll_error(oauth, code))[0] == "authorization_pending"
    error, description = await poll_error(oauth, code)
    assert error == "slow_down"
    assert description == "Polling too fast: wait at least 10 seconds between requests"
    # RFC 8628 §3.5: the raised interval holds for all later polls.
    clock.advance(5)
    assert await poll_error(oauth, code) == (
        "slow_down", "Polling too fast: wait at least 15 seconds between requests")
    clock.advance(15)
    assert (await poll_error(oauth, code))[0] == "authorization_pending"
    clock.advance(15)
    assert (await poll_error(oauth, code))[0] == "authorization_pending"


async def test_a_code_the_customer_denies_ends_with_access_denied(
        ctx: Context, device: Any, new_browser: Any, clock: FakeClock) -> None:
    await make_user(ctx)
    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    phone = new_browser()
    page = await confirm(phone, await enter_code(phone, started["user_code"]), "deny")
    assert page.status_code == 200 and "Your device was not signed in" in page.text
    assert await poll_error(oauth, started["device_code"]) == (
        "access_denied", "The customer denied the device's request")
    # The code is spent for the phone too.
    again = await enter_code(phone, started["user_code"])
    assert again.status_code == 400 and "That code is not valid" in again.text


async def test_denying_on_the_consent_page_ends_with_access_denied(
        ctx: Context, device: Any, new_browser: Any) -> None:
    await make_user(ctx)
    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    phone = new_browser()
    page = await confirm(phone, await enter_code(phone, started["user_code"]))
    consent = await login(phone, page)
    assert urlsplit(str(consent.url)).path.endswith("/consent")
    cancel = re.search(r'action="(/interaction/[^"]+/cancel)".*?name="csrf_token" value="([^"]+)"',
                       consent.text, re.S)
    assert cancel
    page = await follow_to_page(phone, await phone.post(cancel.group(1), data={
        "csrf_token": cancel.group(2)}))
    assert "Your device was not signed in" in page.text
    assert (await poll_error(oauth, started["device_code"]))[0] == "access_denied"


async def test_an_expired_device_code_gets_expired_token(
        ctx: Context, device: Any, new_browser: Any, clock: FakeClock) -> None:
    await make_user(ctx)
    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    clock.advance(601)
    assert await poll_error(oauth, started["device_code"]) == (
        "expired_token", "The device code has expired; start again")
    # Nor can the customer approve it any more.
    phone = new_browser()
    page = await enter_code(phone, started["user_code"])
    assert page.status_code == 400 and "That code is not valid" in page.text


async def test_a_signed_in_customer_whose_consent_covers_the_app_approves_with_one_tap(
        ctx: Context, device: Any, new_browser: Any, clock: FakeClock) -> None:
    await make_user(ctx)
    tv = await tv_app(ctx)
    phone = new_browser()
    first = await ask(device(tv))
    assert done_page_says_signed_in(await approve_on_phone(phone, first["user_code"]))
    # Single sign-on: a second device of the same app, same phone, no password, no consent.
    oauth = device(tv)
    second = await ask(oauth)
    page = await confirm(phone, await enter_code(phone, second["user_code"]))
    assert done_page_says_signed_in(page)
    assert "access_token" in await poll(oauth, second["device_code"])


async def test_concurrent_polls_of_an_approved_code_issue_tokens_once(
        ctx: Context, device: Any, new_browser: Any) -> None:
    await make_user(ctx)
    tv = await tv_app(ctx)
    started = await ask(device(tv))
    await approve_on_phone(new_browser(), started["user_code"])
    pollers = [device(tv) for _ in range(6)]
    results = await asyncio.gather(*(poll(p, started["device_code"]) for p in pollers),
                                   return_exceptions=True)
    issued = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, OAuthError)]
    assert len(issued) == 1 and len(refused) == 5
    assert {r.error for r in refused} == {"invalid_grant"}


async def test_the_device_endpoint_refuses_what_it_must(
        ctx: Context, client: httpx.AsyncClient, device: Any) -> None:
    web = await make_app(ctx, name="Web shop")
    tv = await tv_app(ctx)
    # A client not registered for the grant.
    response = await client.post("/device_authorization", data={
        "scope": "openid"}, headers=web.basic())
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "The client may not use the device authorization grant"}
    # Unknown client, wrong secret.
    response = await client.post("/device_authorization", data={
        "client_id": "nobody", "scope": "openid"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    tv_secret = await make_app(ctx, name="Secret TV", grant_types=[DEVICE_GRANT])
    response = await client.post("/device_authorization", data={"scope": "openid"},
                                 auth=(tv_secret.client_id, "wrong"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # Scope: missing, not allowed, repeated parameter.
    response = await client.post("/device_authorization", data={"client_id": tv.client_id})
    assert response.json() == {"error": "invalid_scope", "error_description": "scope is missing"}
    response = await client.post("/device_authorization", data={
        "client_id": tv.client_id, "scope": "openid address"})
    assert response.json() == {"error": "invalid_scope",
                               "error_description": "scope address is not allowed for this "
                                                    "client"}
    response = await client.post("/device_authorization", content=(
        f"client_id={tv.client_id}&scope=openid&scope=profile"),
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    # A confidential device client authenticates and gets its codes.
    response = await client.post("/device_authorization", data={"scope": "openid"},
                                 headers=tv_secret.basic())
    assert response.status_code == 200 and response.json()["user_code"]


async def test_the_token_endpoint_refuses_bad_device_codes(
        ctx: Context, client: httpx.AsyncClient, device: Any) -> None:
    tv = await tv_app(ctx)
    other = await tv_app(ctx, name="Kitchen speaker")
    code = (await ask(device(tv)))["device_code"]
    for data, expected in (
            ({}, ("invalid_request", "device_code is missing")),
            ({"device_code": "x" * 129}, ("invalid_request", "device_code is missing")),
            ({"device_code": "not-a-code"}, ("invalid_grant", "The device code is invalid")),
    ):
        response = await client.post("/token", data={
            "grant_type": DEVICE_GRANT, "client_id": tv.client_id, **data})
        assert response.status_code == 400
        assert (response.json()["error"], response.json()["error_description"]) == expected
    # RFC 6749 §5.2: a code issued to another client is invalid_grant for this one.
    response = await client.post("/token", data={
        "grant_type": DEVICE_GRANT, "client_id": other.client_id, "device_code": code})
    assert response.json() == {"error": "invalid_grant",
                               "error_description": "The device code is invalid"}
    # A client not registered for the grant cannot redeem at all.
    web = await make_app(ctx, name="Web shop")
    response = await client.post("/token", data={"grant_type": DEVICE_GRANT,
                                                 "device_code": code}, headers=web.basic())
    assert response.json()["error"] == "unauthorized_client"


async def test_the_code_is_entered_in_any_case_with_or_without_the_dash(
        ctx: Context, device: Any, new_browser: Any) -> None:
    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    sloppy = started["user_code"].replace("-", " ").lower()
    page = await enter_code(new_browser(), f"  {sloppy} ")
    assert page.status_code == 200 and started["user_code"] in page.text


async def test_wrong_codes_get_one_answer_and_guessing_is_throttled(
        ctx: Context, device: Any, new_browser: Any) -> None:
    await ask(device(await tv_app(ctx)))
    phone = new_browser()
    page = await phone.get("/device")
    token = csrf_token(page.text)
    answers = set()
    for guess in ("BCDF-GHJK", "AAAA-AAAA", "short", "x" * 40, "<script>"):
        response = await phone.post("/device", data={"csrf_token": token, "user_code": guess})
        assert response.status_code == 400
        answers.add(re.search(r'role="alert"[^>]*>([^<]+)<', response.text).group(1))
    assert answers == {"That code is not valid. Check the code on your device: it may have "
                       "expired, then the device shows a new one."}
    assert "<script>" not in response.text
    # RFC 8628 §5.1: 30 entries a quarter of an hour per network, then 429 with Retry-After.
    statuses = []
    for _ in range(30):
        response = await phone.post("/device", data={"csrf_token": token,
                                                      "user_code": "BCDF-GHJK"})
        statuses.append(response.status_code)
    assert statuses[-1] == 429 and statuses.count(400) == 25
    assert int(response.headers["retry-after"]) > 0


async def test_the_code_pages_refuse_a_post_without_their_csrf_token(
        ctx: Context, device: Any, new_browser: Any) -> None:
    started = await ask(device(await tv_app(ctx)))
    phone = new_browser()
    await phone.get("/device")
    response = await phone.post("/device", data={"user_code": started["user_code"]})
    assert response.status_code == 403
    page = await enter_code(phone, started["user_code"])
    # The entry form's token does not confirm.
    entry_token = csrf_token((await phone.get("/device")).text)
    response = await phone.post("/device/confirm", data={
        "csrf_token": entry_token, "user_code": started["user_code"], "decision": "confirm"})
    assert response.status_code == 403
    assert page.status_code == 200


async def test_a_qr_code_of_the_complete_verification_uri_is_served_as_svg(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/device/qr.svg", params={"user_code": "bcdf-ghjk"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg") and "<path" in response.text
    assert "<title>Sign in this device</title>" in response.text
    other = await client.get("/device/qr.svg", params={"user_code": "BCDF-GHJL"})
    assert other.text != response.text
    for bad in ("", "AAAA-AAAA", "x" * 100):
        refused = await client.get("/device/qr.svg", params={"user_code": bad})
        assert refused.status_code == 400


async def purpose_app(ctx: Context) -> App:
    await purposes.create_purpose(
        ctx, purpose_id="viewing_history", title="Viewing history",
        description="We keep what you watch to suggest more.", data_categories=["behavioral"])
    tv = await tv_app(ctx)
    await purposes.set_client_purposes(ctx, tv.client_id, {"viewing_history": True})
    return tv


async def signed_in_device(ctx: Context, device: Any, new_browser: Any, tv: App
                           ) -> tuple[AsyncOAuth2Client, dict[str, Any], httpx.AsyncClient]:
    oauth = device(tv)
    started = await ask(oauth)
    phone = new_browser()
    assert done_page_says_signed_in(await approve_on_phone(phone, started["user_code"]))
    return oauth, await poll(oauth, started["device_code"]), phone


async def refresh(client: httpx.AsyncClient, tv: App, token: str) -> httpx.Response:
    return await client.post("/token", data={"grant_type": "refresh_token",
                                             "refresh_token": token, "client_id": tv.client_id})


CONSENT_AGAIN = ("The customer's consent for this app has changed or was withdrawn; consent "
                 "must be given again: start a new device authorization")


async def test_a_raised_purpose_version_stops_the_devices_refresh_until_consent_is_given_again(
        ctx: Context, client: httpx.AsyncClient, device: Any, new_browser: Any) -> None:
    await make_user(ctx)
    tv = await purpose_app(ctx)
    oauth, token, phone = await signed_in_device(ctx, device, new_browser, tv)
    # Refreshes go on while the consent is current.
    response = await refresh(client, tv, token["refresh_token"])
    assert response.status_code == 200, response.text
    rotated = response.json()["refresh_token"]
    await purposes.update_purpose(ctx, "viewing_history",
                                  description="We keep what you watch and share it.")
    response = await refresh(client, tv, rotated)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": CONSENT_AGAIN}
    # A new device flow: the phone is asked about the new version, then the device is back.
    started = await ask(oauth)
    page = await confirm(phone, await enter_code(phone, started["user_code"]))
    assert urlsplit(str(page.url)).path.endswith("/consent")
    # Only what changed leads the page; the rest waits, unchanged, in a disclosure.
    changed, _, unchanged = page.text.partition('<details id="unchanged">')
    assert 'id="what-changed"' in changed
    assert 'data-purpose="viewing_history"' in changed and "Updated" in changed
    assert "keep what you watch and share it" in changed
    assert 'data-scope="profile"' not in changed and 'data-scope="profile"' in unchanged
    assert done_page_says_signed_in(await approve(phone, page))
    renewed = await poll(oauth, started["device_code"])
    assert unverified_claims(renewed["access_token"])["consent"]["purposes"] == [
        {"id": "viewing_history", "version": 2}]
    assert (await refresh(client, tv, renewed["refresh_token"])).status_code == 200


async def test_withdrawn_consent_stops_the_devices_refresh_with_the_reason(
        ctx: Context, client: httpx.AsyncClient, device: Any, new_browser: Any) -> None:
    user_id = await make_user(ctx)
    tv = await tv_app(ctx)
    _, token, _ = await signed_in_device(ctx, device, new_browser, tv)
    await grants.withdraw(ctx, user_id, tv.client_id)
    response = await refresh(client, tv, token["refresh_token"])
    assert response.json() == {"error": "invalid_grant", "error_description": CONSENT_AGAIN}


async def test_a_browser_apps_refresh_is_not_stopped_by_a_raised_version(
        ctx: Context, client: httpx.AsyncClient, new_browser: Any) -> None:
    """The rule is the device's: a browser app's next authorization asks again instead."""
    from tests.helpers import Flow, get_code, redeem

    await make_user(ctx)
    await purposes.create_purpose(
        ctx, purpose_id="viewing_history", title="Viewing history",
        description="We keep what you watch to suggest more.", data_categories=["behavioral"])
    web = await make_app(ctx, name="Web shop", grant_types=["authorization_code",
                                                            "refresh_token"],
                         scopes=["openid", "offline_access"])
    await purposes.set_client_purposes(ctx, web.client_id, {"viewing_history": True})
    flow = Flow(web)
    code = await get_code(new_browser(), flow, scope="openid offline_access")
    token = (await redeem(client, flow, code)).json()
    await purposes.update_purpose(ctx, "viewing_history", description="Changed.")
    response = await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        headers=web.basic())
    assert response.status_code == 200


async def test_the_device_grant_is_a_client_setting(ctx: Context, client: httpx.AsyncClient
                                                    ) -> None:
    """Issue 13 item 5: allowed or not per client, through the registration rules the CLI
    and the admin API share."""
    tv = await tv_app(ctx)
    response = await client.post("/device_authorization", data={
        "client_id": tv.client_id, "scope": "openid"})
    assert response.status_code == 200
    await admin.update_client(ctx, tv.client_id, {"grant_types": ["refresh_token"]})
    response = await client.post("/device_authorization", data={
        "client_id": tv.client_id, "scope": "openid"})
    assert response.json()["error"] == "unauthorized_client"


async def test_the_admin_api_registers_a_device_client(
        ctx: Context, client: httpx.AsyncClient) -> None:
    """Issue 13 item 5 through the admin API: the same registration rules as the CLI."""
    from tests.test_admin_api import BASE, admin_app, bearer, token_of

    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    created = await client.post(f"{BASE}/clients", headers=ops, json={
        "name": "Kitchen speaker", "client_type": "public", "application_type": "native",
        "redirect_uris": [], "grant_types": [DEVICE_GRANT], "scopes": ["openid"]})
    assert created.status_code == 201, created.text
    speaker = created.json()["client_id"]
    asked = await client.post("/device_authorization", data={"client_id": speaker,
                                                              "scope": "openid"})
    assert asked.status_code == 200
    changed = await client.patch(f"{BASE}/clients/{speaker}", headers=ops,
                                 json={"grant_types": ["refresh_token"]})
    assert changed.status_code == 200 and changed.json()["grant_types"] == ["refresh_token"]
    refused = await client.post("/device_authorization", data={"client_id": speaker,
                                                               "scope": "openid"})
    assert refused.json()["error"] == "unauthorized_client"


async def test_expired_device_codes_are_purged(ctx: Context, device: Any, clock: FakeClock
                                               ) -> None:
    from sqlalchemy import func, select

    from idp.services import maintenance

    await ask(device(await tv_app(ctx)))
    clock.advance(600 + 3600 + 1)
    await maintenance.run_once(ctx)
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(DeviceCode)) == 0


async def test_an_account_with_two_step_sign_in_gives_its_code_before_the_device_is_approved(
        ctx: Context, device: Any, new_browser: Any, clock: FakeClock) -> None:
    """The device's approval is the ordinary sign-in: the second factor applies."""
    from tests.helpers import PASSWORD
    from tests.test_totp import code, enrol, send_code

    user_id = await make_user(ctx)
    secret, _ = await enrol(new_browser(), clock)
    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    phone = new_browser()
    page = await confirm(phone, await enter_code(phone, started["user_code"]))
    answer = await phone.post(page.url.path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"].endswith("/otp")
    otp_page = await phone.get(answer.headers["location"])
    # The password alone approved nothing.
    assert (await poll_error(oauth, started["device_code"]))[0] == "authorization_pending"
    page = await follow_to_page(phone, await send_code(phone, otp_page, code(secret, clock)))
    page = await approve(phone, page)
    assert done_page_says_signed_in(page)
    clock.advance(5)
    token = await poll(oauth, started["device_code"])
    access = unverified_claims(token["access_token"])
    assert access["sub"] == user_id and access["amr"] == ["pwd", "otp", "mfa"]


async def test_a_device_is_approved_with_a_google_sign_in_on_the_phone(
        ctx: Context, device: Any, google: Any, browsers: Any, clock: FakeClock) -> None:
    """Federation applies to the device's approval as to any app's sign-in."""
    from tests.flows import continue_with_google, walk

    oauth = device(await tv_app(ctx))
    started = await ask(oauth)
    phone = browsers(google)
    page = await confirm(phone, await enter_code(phone, started["user_code"]))
    assert urlsplit(str(page.url)).path.endswith("/login")
    page = await continue_with_google(phone, page)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await walk(phone, await phone.post(page.url.path, data={
            "csrf_token": csrf_token(page.text), "decision": "allow"}))
    assert done_page_says_signed_in(page)
    token = await poll(oauth, started["device_code"])
    assert unverified_claims(token["id_token"])["amr"] == ["fed"]
