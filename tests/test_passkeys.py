"""Passkeys (issue 12 item 5; W3C WebAuthn Level 3), through the pages a customer uses:
registering one in the account center, signing in to an app with it username-less, as the
second factor after a password, step-up, the signature-counter rule, removal, the operator's
reset and the data export. The ceremonies are driven from the test side by a software
authenticator built here from `cryptography` (an EC P-256 key) and `cbor2`: `none`
attestation objects, authenticator data with the RP ID hash, flags and counter, and ES256
assertion signatures, independent of the code under test."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import struct
from base64 import urlsafe_b64encode
from typing import Any

import cbor2
import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from idp.main import create_app
from idp.protocol.discovery import ACR_MFA, ACR_PASSWORD
from idp.services.accounts import operators
from idp.services.context import Context, build_context
from idp.settings import Settings
from idp.store.models import Passkey, SecurityEvent, User
from tests.conftest import ISSUER, FakeClock
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    authorize,
    csrf_token,
    make_app,
    make_user,
    unverified_claims,
)
from tests.test_totp import enrol, tokens_after

SESSION_COOKIE = "__Host-idp_session"
RP_ID = "idp.test"
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


class Authenticator:
    """A software passkey: one EC P-256 credential, discoverable, with a counter."""

    def __init__(self, *, synced: bool = True, verifies_user: bool = True) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.count = 0
        self.synced = synced
        self.verifies_user = verifies_user
        self.user_handle: str | None = None

    def _flags(self, extra: int = 0) -> int:
        flags = UP | extra
        if self.verifies_user:
            flags |= UV
        if self.synced:
            flags |= BE | BS
        return flags

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def register(self, options: dict[str, Any], *, origin: str = ISSUER, rp_id: str = RP_ID,
                 challenge: str | None = None) -> str:
        client_data = json.dumps({"type": "webauthn.create",
                                  "challenge": challenge or options["challenge"],
                                  "origin": origin, "crossOrigin": False}).encode()
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id))
                    + self.credential_id + self._cose_key())
        auth_data = (hashlib.sha256(rp_id.encode()).digest()
                     + bytes([self._flags(AT)]) + struct.pack(">I", self.count) + attested)
        self.user_handle = options["user"]["id"]
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                           "type": "public-key", "authenticatorAttachment": "platform",
                           "clientExtensionResults": {},
                           "response": {"clientDataJSON": b64(client_data),
                                        "attestationObject": b64(attestation),
                                        "transports": ["internal", "hybrid", "carrier"]}})

    def assertion(self, options: dict[str, Any], *, origin: str = ISSUER, rp_id: str = RP_ID,
                  count: int | None = None, user_handle: str | None = None) -> str:
        self.count = self.count + 1 if count is None else count
        client_data = json.dumps({"type": "webauthn.get", "challenge": options["challenge"],
                                  "origin": origin, "crossOrigin": False}).encode()
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags()])
                     + struct.pack(">I", self.count))
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return json.dumps({"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                           "type": "public-key", "clientExtensionResults": {},
                           "response": {"clientDataJSON": b64(client_data),
                                        "authenticatorData": b64(auth_data),
                                        "signature": b64(signature),
                                        "userHandle": user_handle or self.user_handle}})


def options_in(page: httpx.Response) -> dict[str, Any]:
    match = re.search(r'data-options="([^"]+)"', page.text)
    assert match, page.text
    result: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return result


def alert(page: httpx.Response) -> str:
    match = re.search(r'role="alert" id="form-error">([^<]+)<', page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def form_token(page: httpx.Response, action: str) -> str:
    form = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
                     r'<input type="hidden" name="csrf_token" value="([^"]+)"', page.text)
    assert form, page.text
    return form.group(1)


async def add_passkey(browser: httpx.AsyncClient, authenticator: Authenticator,
                      name: str = "My phone") -> httpx.Response:
    page = await browser.get("/account/passkeys")
    assert page.status_code == 200, page.text
    answer = await browser.post("/account/passkeys", data={
        "csrf_token": form_token(page, "/account/passkeys"), "name": name,
        "credential": authenticator.register(options_in(page))})
    assert answer.status_code == 303, answer.text
    return answer


async def login_page(browser: httpx.AsyncClient, flow: Flow, **extra: str) -> httpx.Response:
    page = await authorize(browser, flow, **extra)
    assert page.status_code == 200 and page.url.path.endswith("/login"), page.text
    return page


async def passkey_sign_in(browser: httpx.AsyncClient, page: httpx.Response,
                          credential: str) -> httpx.Response:
    action = page.url.path.replace("/login", "/passkey")
    return await browser.post(action, data={
        "csrf_token": form_token(page, action), "credential": credential})


@pytest.fixture
async def shop(ctx: Context) -> Flow:
    await make_user(ctx)
    return Flow(await make_app(ctx))


async def passkeys_of(ctx: Context) -> list[Passkey]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(Passkey)))


async def events(ctx: Context, kind: str) -> list[SecurityEvent]:
    async with ctx.db.transaction() as session:
        return list(await session.scalars(select(SecurityEvent).where(
            SecurityEvent.kind == kind)))


# -- Registration ----------------------------------------------------------------------------


async def test_registering_needs_a_recent_sign_in(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    assert (await client.get("/account/passkeys")).headers["location"] == "/account/login"
    await account_sign_in(client)
    overview = await client.get("/account")
    assert 'data-passkeys="0"' in overview.text
    assert 'href="/account/passkeys"' in (await client.get("/account/security")).text
    page = await client.get("/account/passkeys")
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    late = await client.get("/account/passkeys")
    assert late.status_code == 200 and "data-options" not in late.text
    assert 'href="/account/reauth?next=%2Faccount%2Fpasskeys"' in late.text
    stale = await client.post("/account/passkeys", data={
        "csrf_token": form_token(page, "/account/passkeys"), "name": "x",
        "credential": Authenticator().register(options_in(page))})
    assert stale.status_code == 303 and stale.headers["location"].startswith("/account/reauth")
    assert await passkeys_of(ctx) == []


async def test_a_registered_passkey_is_stored_with_its_flags(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    await account_sign_in(client)
    page = await client.get("/account/passkeys")
    options = options_in(page)
    assert options["rp"] == {"id": RP_ID, "name": ctx.settings.controller_name}
    async with ctx.db.transaction() as session:
        user = (await session.scalars(select(User))).one()
    # A stable opaque handle, never the address.
    assert options["user"]["id"] == b64(user.id.encode())
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["excludeCredentials"] == []
    assert "script-src 'self'" in page.headers["content-security-policy"]
    authenticator = Authenticator()
    done = await add_passkey(client, authenticator, "  My   phone ")
    assert done.headers["location"] == "/account/passkeys?done=added"
    (stored,) = await passkeys_of(ctx)
    assert (stored.name, stored.sign_count, stored.device_type, stored.backed_up) == (
        "My phone", 0, "multi_device", True)
    assert stored.credential_id == b64(authenticator.credential_id)
    assert stored.transports == ["internal", "hybrid"]  # unknown values left out
    assert stored.aaguid == "00000000-0000-0000-0000-000000000000"
    assert (stored.created_at, stored.last_used_at) == (clock.value, None)
    listed = await client.get("/account/passkeys")
    assert "My phone" in listed.text and "not used yet" in listed.text
    assert [e.detail for e in await events(ctx, "passkey_added")] == [{"passkey": "My phone"}]


@pytest.mark.parametrize("case", ["origin", "rp_id", "challenge", "replay", "malformed",
                                  "oversized", "shape"])
async def test_a_bad_registration_is_refused(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, case: str) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    page = await client.get("/account/passkeys")
    options = options_in(page)
    credential = {
        "origin": lambda: authenticator.register(options, origin="https://evil.test"),
        "rp_id": lambda: authenticator.register(options, rp_id="evil.test"),
        "challenge": lambda: authenticator.register(options, challenge=b64(os.urandom(32))),
        "replay": lambda: authenticator.register(options),
        "malformed": lambda: "{not json",
        "oversized": lambda: "x" * 20_000,
        "shape": lambda: '{"id": "x", "response": {"clientDataJSON": "!!"}}',
    }[case]()
    token = form_token(page, "/account/passkeys")
    if case == "replay":
        # The challenge is used up by the first answer, even one that was refused.
        first = await client.post("/account/passkeys", data={
            "csrf_token": token, "credential": authenticator.register(
                options, origin="https://evil.test")})
        assert first.status_code == 200
    answer = await client.post("/account/passkeys", data={
        "csrf_token": token, "credential": credential})
    assert answer.status_code == 200
    # A replayed challenge: the page of the refusal carries a new one, the old is gone.
    assert alert(answer) == {
        "malformed": "Your browser sent an answer we could not read. Try again.",
        "oversized": "Your browser sent an answer we could not read. Try again.",
    }.get(case, "Your passkey could not be added. Try again, and use a passkey made for "
                "this site.")
    assert await passkeys_of(ctx) == []


async def test_a_credential_registered_to_one_account_is_refused_for_another(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await make_user(ctx, "bob@example.com")
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    bob = new_browser()
    await account_sign_in(bob, "bob@example.com")
    page = await bob.get("/account/passkeys")
    answer = await bob.post("/account/passkeys", data={
        "csrf_token": form_token(page, "/account/passkeys"),
        "credential": authenticator.register(options_in(page))})
    assert alert(answer) == "That passkey is already registered."
    assert len(await passkeys_of(ctx)) == 1


# -- Username-less sign-in ---------------------------------------------------------------------


async def test_username_less_sign_in_with_user_verification_is_mfa(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow,
        new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator(synced=False)
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    assert 'autocomplete="username webauthn"' in page.text
    assert 'data-passkey="conditional"' in page.text
    options = options_in(page)
    assert options["allowCredentials"] == [] and options["rpId"] == RP_ID
    assert "script-src 'self'" in page.headers["content-security-policy"]
    clock.advance(5)
    answer = await passkey_sign_in(browser, page, authenticator.assertion(options))
    assert answer.status_code == 303, answer.text
    assert SESSION_COOKIE in answer.headers.get("set-cookie", "")
    tokens = await tokens_after(browser, shop, answer)
    id_token = unverified_claims(tokens["id_token"])
    # RFC 8176: a device-bound key (hwk), user presence, and UV on top: mfa.
    assert id_token["amr"] == ["hwk", "user", "mfa"]
    assert id_token["acr"] == ACR_MFA
    (stored,) = await passkeys_of(ctx)
    assert (stored.sign_count, stored.last_used_at) == (1, clock.value)


async def test_without_user_verification_a_passkey_is_one_factor(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow,
        new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator(verifies_user=False)
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    answer = await passkey_sign_in(browser, page, authenticator.assertion(options_in(page)))
    tokens = await tokens_after(browser, shop, answer)
    id_token = unverified_claims(tokens["id_token"])
    assert id_token["amr"] == ["swk", "user"]  # synced: a software-secured key
    assert id_token["acr"] == ACR_PASSWORD


async def test_a_challenge_is_used_once_and_bound_to_its_browser(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    options = options_in(page)
    # Another browser's page, answered with this one's challenge.
    other = new_browser()
    other_page = await login_page(other, shop)
    refused = await passkey_sign_in(other, other_page, authenticator.assertion(options))
    assert alert(refused) == ("That passkey could not sign you in. Try again, or sign in "
                              "with your email address and password.")
    assert (await passkey_sign_in(browser, page, authenticator.assertion(options))
            ).status_code == 303
    # The same challenge again (replayed by someone who saw it): used up.
    again = await passkey_sign_in(browser, page, authenticator.assertion(options))
    assert alert(again) == "This passkey request has expired or was already used. Try again."


@pytest.mark.parametrize("case", ["origin", "rp_id", "malformed", "oversized", "unknown",
                                  "user_handle"])
async def test_a_bad_assertion_is_refused_the_same_way(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any,
        case: str) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    options = options_in(page)
    credential = {
        "origin": lambda: authenticator.assertion(options, origin="https://evil.test"),
        "rp_id": lambda: authenticator.assertion(options, rp_id="evil.test"),
        "malformed": lambda: "{not json",
        "oversized": lambda: "x" * 20_000,
        "unknown": lambda: Authenticator().assertion(options, user_handle="eA"),
        "user_handle": lambda: authenticator.assertion(options, user_handle=b64(b"someone")),
    }[case]()
    answer = await passkey_sign_in(browser, page, credential)
    assert answer.status_code == 200
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    assert alert(answer) == (
        "Your browser sent an answer we could not read. Try again."
        if case in ("malformed", "oversized") else
        "That passkey could not sign you in. Try again, or sign in with your email address "
        "and password.")


async def test_a_counter_that_goes_backwards_is_refused_and_recorded(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    assert (await passkey_sign_in(browser, page, authenticator.assertion(
        options_in(page), count=7))).status_code == 303
    clone = new_browser()
    page = await login_page(clone, shop)
    answer = await passkey_sign_in(clone, page, authenticator.assertion(options_in(page),
                                                                         count=7))
    assert "its sign-in counter went backwards" in alert(answer)
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    (event,) = await events(ctx, "passkey_counter_regressed")
    assert event.detail == {"passkey": "My phone", "stored": 7, "received": 7}
    (stored,) = await passkeys_of(ctx)
    assert stored.sign_count == 7


async def test_a_removed_passkey_no_longer_signs_in(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow,
        new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    # Removing asks for a recent sign-in with the second factor: the passkey now is one.
    listed = await client.get("/account/passkeys")
    assert "My phone" in listed.text and "/account/passkeys/remove" not in listed.text
    (stored,) = await passkeys_of(ctx)
    refused = await client.post("/account/passkeys/remove", data={
        "csrf_token": form_token(await client.get("/account/passkeys"),
                                 "/account/passkeys/remove") if False else "",
        "passkey": stored.id})
    assert refused.status_code == 403
    browser = new_browser()
    page = await login_page(browser, shop)
    await tokens_after(browser, shop, await passkey_sign_in(
        browser, page, authenticator.assertion(options_in(page))))
    listed = await browser.get("/account/passkeys")
    assert listed.status_code == 200
    (stored,) = await passkeys_of(ctx)
    # A registration from here excludes the credential the account has.
    assert options_in(listed)["excludeCredentials"][0]["id"] == stored.credential_id
    renamed = await browser.post("/account/passkeys/rename", data={
        "csrf_token": form_token(listed, "/account/passkeys/rename"), "passkey": stored.id,
        "name": "Laptop"})
    assert renamed.headers["location"] == "/account/passkeys?done=renamed"
    removed = await browser.post("/account/passkeys/remove", data={
        "csrf_token": form_token(listed, "/account/passkeys/remove"), "passkey": stored.id})
    assert removed.headers["location"] == "/account/passkeys?done=removed"
    assert await passkeys_of(ctx) == []
    assert [e.detail for e in await events(ctx, "passkey_removed")] == [{"passkey": "Laptop"}]
    later = new_browser()
    page = await login_page(later, shop)
    answer = await passkey_sign_in(later, page, authenticator.assertion(options_in(page)))
    assert alert(answer).startswith("That passkey could not sign you in.")


async def test_another_accounts_passkey_does_not_sign_in_as_this_one(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await make_user(ctx, "bob@example.com")
    await account_sign_in(client)
    alice_key = Authenticator()
    await add_passkey(client, alice_key)
    bob = new_browser()
    await account_sign_in(bob, "bob@example.com")
    bob_key = Authenticator()
    await add_passkey(bob, bob_key)
    browser = new_browser()
    page = await login_page(browser, shop)
    # Bob's credential presented with Alice's user handle.
    answer = await passkey_sign_in(browser, page, bob_key.assertion(
        options_in(page), user_handle=alice_key.user_handle))
    assert alert(answer).startswith("That passkey could not sign you in.")


# -- As a second factor ----------------------------------------------------------------------


async def test_after_a_password_an_account_with_a_passkey_is_asked_for_it(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator(verifies_user=False)
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, shop)
    answer = await browser.post(page.url.path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert answer.status_code == 303
    assert answer.headers["location"] == page.url.path.replace("/login", "/otp")
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")  # the password alone
    second = await browser.get(answer.headers["location"])
    assert "Use your passkey" in second.text
    assert 'autocomplete="one-time-code"' not in second.text  # no app: no code field
    options = options_in(second)
    assert [c["id"] for c in options["allowCredentials"]] == [b64(authenticator.credential_id)]
    # A code where a passkey is wanted is refused.
    wrong = await browser.post(second.url.path, data={
        "csrf_token": csrf_token(second.text), "code": "123456"})
    assert wrong.status_code == 200 and SESSION_COOKIE not in wrong.headers.get(
        "set-cookie", "")
    second = await browser.get(answer.headers["location"])
    done = await browser.post(second.url.path, data={
        "csrf_token": csrf_token(second.text),
        "credential": authenticator.assertion(options_in(second))})
    assert done.status_code == 303, done.text
    tokens = await tokens_after(browser, shop, done)
    id_token = unverified_claims(tokens["id_token"])
    assert id_token["amr"] == ["pwd", "swk", "user", "mfa"]
    assert id_token["acr"] == ACR_MFA


async def test_the_second_factor_page_offers_both_passkey_and_app(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow,
        new_browser: Any) -> None:
    await enrol(client, clock)
    # After the app is on, the account center asks for it again first.
    authenticator = Authenticator()
    reauth = await client.get("/account/passkeys")
    assert "data-options" not in reauth.text
    browser = new_browser()
    page = await login_page(browser, shop)
    answer = await browser.post(page.url.path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    second = await browser.get(answer.headers["location"])
    assert 'autocomplete="one-time-code"' in second.text and "Use your passkey" not in \
        second.text
    del authenticator


async def test_step_up_is_met_by_a_passkey_with_user_verification(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    strict = Flow(await make_app(ctx, name="Bank", require_mfa=True))
    await account_sign_in(client)
    authenticator = Authenticator()
    await add_passkey(client, authenticator)
    browser = new_browser()
    page = await login_page(browser, strict)
    tokens = await tokens_after(browser, strict, await passkey_sign_in(
        browser, page, authenticator.assertion(options_in(page))))
    assert unverified_claims(tokens["id_token"])["acr"] == ACR_MFA
    # acr_values asking for MFA of an app: the same session meets it without asking again.
    answer = await authorize(browser, shop, acr_values=ACR_MFA)
    tokens = await tokens_after(browser, shop, answer)
    assert unverified_claims(tokens["id_token"])["amr"] == ["swk", "user", "mfa"]


async def test_passkey_attempts_are_throttled_per_network(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    """ATO-02: an assertion is counted against the source network before it is checked,
    with the passwords' allowance; past it, 429 with Retry-After."""
    limited = settings.model_copy(update={"throttle_source_failures": 3})
    limited_ctx = build_context(limited, clock=clock)
    app = create_app(limited, ctx=limited_ctx)
    try:
        await make_user(ctx)
        flow = Flow(await make_app(ctx))
        async with httpx.AsyncClient(base_url=ISSUER, transport=httpx.ASGITransport(
                app=app, client=("203.0.113.7", 40000))) as browser:
            page = await login_page(browser, flow)
            statuses = []
            for _ in range(5):
                answer = await passkey_sign_in(browser, page, Authenticator().assertion(
                    options_in(page), user_handle="eA"))
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    page = answer
            assert statuses == [200] * 3 + [429] * 2
            assert answer.headers["retry-after"]
    finally:
        await limited_ctx.close()


# -- Operators, export, CSRF --------------------------------------------------------------------


async def test_an_operator_reset_removes_passkeys_and_the_export_lists_them(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    await account_sign_in(client)
    await add_passkey(client, Authenticator(), "Phone")
    from idp.services.accounts.export import export_account

    async with ctx.db.transaction() as session:
        user = (await session.scalars(select(User))).one()
    exported = await export_account(ctx, user.id)
    text = json.dumps(exported)
    (listed,) = exported["security"]["two_step"]["passkeys"] if "security" in exported else \
        _find(exported, "passkeys")
    assert listed["name"] == "Phone" and listed["last_used_at"] is None
    stored = (await passkeys_of(ctx))[0]
    assert stored.credential_id not in text and "public_key" not in text
    result = await operators.reset_second_factors(ctx, user.id, actor="test")
    assert result["passkeys_removed"] == 1
    assert await passkeys_of(ctx) == []


def _find(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


async def test_every_passkey_form_needs_its_csrf_token(
        client: httpx.AsyncClient, ctx: Context, shop: Flow, new_browser: Any) -> None:
    await account_sign_in(client)
    authenticator = Authenticator()
    page = await client.get("/account/passkeys")
    for path in ("/account/passkeys", "/account/passkeys/rename", "/account/passkeys/remove"):
        forged = await client.post(path, data={
            "credential": authenticator.register(options_in(page)), "passkey": "x",
            "name": "x"})
        assert forged.status_code == 403, path
        wrong = await client.post(path, data={"csrf_token": csrf_token(page.text),
                                              "passkey": "x", "name": "x"})
        assert wrong.status_code == 403 or path == "/account/passkeys", path
    browser = new_browser()
    login = await login_page(browser, shop)
    forged = await browser.post(login.url.path.replace("/login", "/passkey"), data={
        "csrf_token": csrf_token(login.text), "credential": "{}"})
    assert forged.status_code == 403
    assert await passkeys_of(ctx) == []


async def test_the_login_page_works_without_javascript(
        client: httpx.AsyncClient, ctx: Context, shop: Flow) -> None:
    page = await login_page(client, shop)
    # The passkey form is hidden until the script shows it; the password form is whole.
    assert re.search(r'data-passkey="conditional"\s+data-options="[^"]+" hidden>', page.text)
    answer = await client.post(page.url.path, data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert answer.status_code == 303 and SESSION_COOKIE in answer.headers["set-cookie"]


async def test_expired_challenges_are_purged(client: httpx.AsyncClient, ctx: Context,
                                             clock: FakeClock) -> None:
    """Every login page view writes a challenge; the maintenance loop removes them once past
    their time, and a live one stays."""
    from sqlalchemy import func

    from idp.services import maintenance
    from idp.store.models import WebAuthnChallenge
    from tests.helpers import Flow, authorize, make_app

    shop = await make_app(ctx)
    await authorize(client, Flow(shop))
    clock.advance(301)
    await authorize(client, Flow(shop))
    await maintenance.run_once(ctx)
    async with ctx.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(WebAuthnChallenge)) == 1
