"""Brute-force and credential-stuffing throttling (security.md §5 ATO-01 to ATO-04), through
the login page a customer or an attacker would use."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from idp.main import create_app
from idp.services.context import Context, build_context
from idp.services.signin.throttle import account_key, source_key
from idp.settings import Settings
from idp.store.models import Throttle
from idp.web.source import client_address, proxy_networks
from tests.conftest import ISSUER, FakeClock
from tests.helpers import PASSWORD, Flow, authorize, csrf_token, make_app, make_user

EMAIL = "alice@example.com"


async def _login_page(browser: httpx.AsyncClient, ctx: Context) -> httpx.Response:
    app = await make_app(ctx)
    page = await authorize(browser, Flow(app))
    assert page.status_code == 200 and page.url.path.endswith("/login")
    return page


async def _try(browser: httpx.AsyncClient, page: httpx.Response, password: str,
               email: str = EMAIL) -> httpx.Response:
    return await browser.post(page.url.path, data={
        "csrf_token": csrf_token(page.text), "email": email, "password": password})


def _signed_in(response: httpx.Response) -> bool:
    return response.status_code == 303


async def test_five_failures_are_free_then_the_delay_doubles(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """ATO-01: five free failures, then 1 s, 2 s, 4 s ... with 429 and Retry-After; no
    password is checked while held back, and the right one works once the delay is over."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    for _ in range(5):
        response = await _try(client, page, "wrong-password")
        assert response.status_code == 200  # the login page again, with the failure message
    held = await _try(client, page, PASSWORD)
    assert held.status_code == 429
    assert held.headers["retry-after"] == "1"
    assert "Too many sign-in attempts" in held.text
    clock.advance(1)
    assert (await _try(client, page, "wrong-again")).status_code == 200
    held = await _try(client, page, "wrong-again")
    assert held.status_code == 429 and held.headers["retry-after"] == "2"
    clock.advance(2)
    assert _signed_in(await _try(client, page, PASSWORD))


async def test_the_delay_is_capped_and_never_a_lockout(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """ATO-01 (no hard lockout, Keycloak GHSA-cq42-vhv7-xr7p): however many failures, the wait
    is at most the cap, and the right password after it still signs in."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    waits = []
    for _ in range(40):
        response = await _try(client, page, "wrong-password")
        if response.status_code == 429:
            waits.append(int(response.headers["retry-after"]))
            clock.advance(int(response.headers["retry-after"]))
    assert waits[:10] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert set(waits[10:]) == {ctx.settings.throttle_max_delay_seconds}
    clock.advance(ctx.settings.throttle_max_delay_seconds)
    page = await _login_page(client, ctx)  # hours later: the first form has expired
    assert _signed_in(await _try(client, page, PASSWORD))


async def test_a_success_starts_the_account_afresh(
        new_browser, ctx: Context) -> None:  # type: ignore[no-untyped-def]
    await make_user(ctx)
    first = new_browser()
    page = await _login_page(first, ctx)
    for _ in range(4):
        await _try(first, page, "wrong-password")
    assert _signed_in(await _try(first, page, PASSWORD))
    second = new_browser()
    page = await _login_page(second, ctx)
    for _ in range(5):
        assert (await _try(second, page, "wrong-password")).status_code == 200


async def test_unknown_and_known_accounts_are_throttled_alike(
        client: httpx.AsyncClient, ctx: Context) -> None:
    """ATO-05: throttling tells nothing about which addresses have accounts."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    answers = {}
    for email in (EMAIL, "nobody@example.com"):
        statuses = [(await _try(client, page, "wrong-password", email)).status_code
                    for _ in range(6)]
        answers[email] = statuses
    assert answers[EMAIL] == answers["nobody@example.com"] == [200] * 5 + [429]


async def test_email_spelling_does_not_escape_the_counter(
        client: httpx.AsyncClient, ctx: Context) -> None:
    await make_user(ctx)
    page = await _login_page(client, ctx)
    for email in ("alice@example.com", "ALICE@example.com", " Alice@Example.com ",
                  " " * 400 + "alice@EXAMPLE.COM", "\taLice@example.com" + " " * 400):
        await _try(client, page, "wrong-password", email)
    assert (await _try(client, page, PASSWORD, "Alice@example.com")).status_code == 429


async def test_parallel_guesses_all_count(client: httpx.AsyncClient, ctx: Context) -> None:
    """ATO-03 (Keycloak issues/31726): twenty simultaneous guesses are not twenty free ones;
    only the free five reach the password check."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    responses = await asyncio.gather(*(_try(client, page, f"guess-{i}") for i in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 15


async def test_credential_stuffing_from_one_network_is_held_back(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    """ATO-02: failures across many accounts from one /24 are capped per window; another
    network is unaffected, and the cap lifts when the window ends."""
    limited = settings.model_copy(update={"throttle_source_failures": 10})
    limited_ctx = build_context(limited, clock=clock)
    app = create_app(limited, ctx=limited_ctx)

    def browser(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=ISSUER, transport=httpx.ASGITransport(
            app=app, client=(address, 40000)))

    try:
        async with browser("203.0.113.7") as attacker, browser("203.0.113.200") as neighbour, \
                browser("198.51.100.9") as other:
            page = await _login_page(attacker, limited_ctx)
            statuses = [(await _try(attacker, page, "password1", f"user{i}@example.com"))
                        .status_code for i in range(12)]
            assert statuses == [200] * 10 + [429] * 2
            page = await _login_page(neighbour, limited_ctx)
            assert (await _try(neighbour, page, "x", "someone@example.com")).status_code == 429
            page = await _login_page(other, limited_ctx)
            assert (await _try(other, page, "x", "someone@example.com")).status_code == 200
            clock.advance(limited.throttle_source_window_seconds)
            page = await _login_page(attacker, limited_ctx)
            assert (await _try(attacker, page, "x", "late@example.com")).status_code == 200
    finally:
        await limited_ctx.close()


async def test_a_browser_that_signed_in_before_gets_in_while_its_network_is_held_back(
        settings: Settings, ctx: Context, clock: FakeClock) -> None:
    """Issue 11 point 4 (OWASP device cookies): behind one carrier address, an attacker's run
    holds back the network and the account with a growing delay, never an hour-long wall; the
    customer's phone, which signed in before, signs in at once; its own failures are throttled
    on its own key."""
    limited = settings.model_copy(update={"throttle_source_failures": 10})
    limited_ctx = build_context(limited, clock=clock)
    app = create_app(limited, ctx=limited_ctx)

    def browser(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=ISSUER, transport=httpx.ASGITransport(
            app=app, client=(address, 40000)))

    await make_user(limited_ctx)
    try:
        async with browser("203.0.113.7") as phone, browser("203.0.113.9") as laptop, \
                browser("203.0.113.200") as attacker:
            first = await _try(phone, await _login_page(phone, limited_ctx), PASSWORD)
            assert _signed_in(first)
            device = next(c for c in first.headers.get_list("set-cookie")
                          if c.startswith("__Host-idp_device="))
            attributes = {a.strip().lower() for a in device.split(";")[1:]}
            assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
            # Signed out later: the device cookie stays, the session goes.
            phone.cookies.delete(limited.session_cookie_name)
            page = await _login_page(attacker, limited_ctx)
            for i in range(16):
                await _try(attacker, page, "guess", EMAIL if i % 2 else f"u{i}@example.com")
            held = await _try(attacker, page, "guess", "someone@example.com")
            assert held.status_code == 429
            # A growing delay, not the rest of the hour.
            assert int(held.headers["retry-after"]) <= 2 ** 6
            # The customer on a new laptop behind the same address waits like everyone else.
            fresh = await _try(laptop, await _login_page(laptop, limited_ctx), PASSWORD)
            assert fresh.status_code == 429
            # The phone that signed in before gets in at once.
            assert _signed_in(await _try(phone, await _login_page(phone, limited_ctx), PASSWORD))
            phone.cookies.delete(limited.session_cookie_name)
            # A stolen device cookie is no free pass: its own failures are delayed.
            page = await _login_page(phone, limited_ctx)
            for _ in range(limited.throttle_free_failures):
                assert (await _try(phone, page, "wrong-password")).status_code == 200
            own = await _try(phone, page, PASSWORD)
            assert (own.status_code, own.headers["retry-after"]) == (429, "1")
            # The cookie is bound to the account: for another address it vouches for nothing.
            other = await _try(phone, page, "x", "someone-else@example.com")
            assert other.status_code == 429
    finally:
        await limited_ctx.close()


@pytest.mark.parametrize(("peer", "header", "trusted", "expected"), [
    # No trusted proxy: the header is the client's own words and is ignored.
    ("203.0.113.7", ["198.51.100.1"], (), "203.0.113.7"),
    # Behind a trusted proxy: the rightmost untrusted hop is the client.
    ("10.0.0.2", ["198.51.100.1, 203.0.113.9"], ("10.0.0.0/8",), "203.0.113.9"),
    ("10.0.0.2", ["1.2.3.4, 203.0.113.9, 10.0.0.5"], ("10.0.0.0/8",), "203.0.113.9"),
    # A forged leftmost entry does not move the client.
    ("10.0.0.2", ["127.0.0.1", "203.0.113.9"], ("10.0.0.0/8",), "203.0.113.9"),
    # Malformed: stop at the last trusted hop rather than skip the policy.
    ("10.0.0.2", ["203.0.113.9, not-an-ip"], ("10.0.0.0/8",), "10.0.0.2"),
    ("10.0.0.2", [], ("10.0.0.0/8",), "10.0.0.2"),
])
def test_client_address_is_taken_only_from_trusted_proxies(
        peer: str, header: list[str], trusted: tuple[str, ...], expected: str) -> None:
    """ATO-04 / RFC 9700 §4.13."""
    assert client_address(peer, header, proxy_networks(trusted)) == expected


def test_sources_are_grouped_by_network() -> None:
    assert source_key("203.0.113.7") == source_key("203.0.113.250") == "net:203.0.113.0/24"
    assert source_key("2001:db8:1:2:3::9") == "net:2001:db8:1:2::/64"
    assert source_key("::ffff:203.0.113.7") == "net:203.0.113.0/24"
    assert source_key("garbage") is None
    assert source_key(None) is None


def test_a_malformed_trusted_proxy_is_refused_at_start_up(settings: Settings) -> None:
    """ATO-04: a typo must not quietly put every customer behind the proxy's counter."""
    with pytest.raises(ValueError, match="not an address or network"):
        Settings.model_validate({**settings.model_dump(), "trusted_proxies": ["10.0.0.0/33"]})
    ok = Settings.model_validate({**settings.model_dump(),
                                  "trusted_proxies": ["10.0.0.0/8", "2001:db8::1"]})
    assert ok.trusted_proxies == ("10.0.0.0/8", "2001:db8::1")


async def test_the_account_center_login_is_throttled_too(
        client: httpx.AsyncClient, ctx: Context) -> None:
    """ATO-03: every credential path checks the same counters."""
    await make_user(ctx)
    page = await client.get("/account/login")
    for _ in range(5):
        response = await client.post("/account/login", data={
            "csrf_token": csrf_token(page.text), "email": EMAIL, "password": "wrong"})
        assert response.status_code == 200
    held = await client.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": EMAIL, "password": PASSWORD})
    assert held.status_code == 429 and held.headers["retry-after"] == "1"


async def test_a_run_of_failures_outlives_the_daily_window(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """ATO-01 (security review): a day later the attacker gets no fresh allowance; only a
    success starts the account afresh. A few stray failures are still forgotten."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    for _ in range(5):
        await _try(client, page, "wrong-password")
    clock.advance(ctx.settings.throttle_account_window_seconds + 1)
    page = await _login_page(client, ctx)
    assert (await _try(client, page, "wrong-again")).status_code == 200
    held = await _try(client, page, "wrong-again")
    assert held.status_code == 429 and held.headers["retry-after"] == "2"


async def test_stray_failures_are_forgotten_with_the_window(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    await make_user(ctx)
    page = await _login_page(client, ctx)
    for _ in range(4):
        await _try(client, page, "wrong-password")
    clock.advance(ctx.settings.throttle_account_window_seconds + 1)
    page = await _login_page(client, ctx)
    assert [(await _try(client, page, "typo")).status_code for _ in range(5)] == [200] * 5


async def _counters(ctx: Context) -> dict[str, tuple[int, int]]:
    """Every throttle counter: key -> (failures, blocked_until)."""
    async with ctx.db.transaction() as session:
        rows = await session.scalars(select(Throttle))
        return {row.key: (row.failures, row.blocked_until) for row in rows}


def _hashed_passwords(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password argon2 verifies from now on, in order (what reached the hash)."""
    checked: list[str] = []
    verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str, password: str | bytes) -> bool:
        checked.append(str(password))
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    return checked


@pytest.mark.parametrize("email", [EMAIL, "nobody@example.com"], ids=["account", "no-account"])
async def test_parallel_guesses_are_counted_before_the_hash_and_held_back_ones_cost_none(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch, email: str) -> None:
    """README: "Each attempt is counted in one atomic statement before the hash is checked, so
    parallel guesses all count", and a held-back attempt gets 429 without a password check.
    Counted by argon2 verifications: of twenty simultaneous guesses exactly the five free
    ones are hashed, and they are the ones answered 200; once their delay is over, of twenty
    more exactly one is. The counters (the account's and the network's) hold exactly the
    attempts that were checked, and an address without an account costs the same hashes."""
    await make_user(ctx)
    page = await _login_page(client, ctx)
    checked = _hashed_passwords(monkeypatch)
    network = source_key("127.0.0.1")
    assert network is not None

    async def storm(round_: int) -> dict[str, httpx.Response]:
        guesses = [f"guess-{round_}-{i}" for i in range(20)]
        responses = await asyncio.gather(*(_try(client, page, g, email) for g in guesses))
        return dict(zip(guesses, responses, strict=True))

    first = await storm(1)
    let_through = {g for g, r in first.items() if r.status_code == 200}
    held = [r for r in first.values() if r.status_code != 200]
    assert len(let_through) == 5
    assert {(r.status_code, r.headers["retry-after"]) for r in held} == {(429, "1")}
    assert len(held) == 15
    assert sorted(checked) == sorted(let_through)
    assert await _counters(ctx) == {account_key(email): (5, clock() + 1), network: (5, 0)}

    clock.advance(1)
    second = await storm(2)
    let_through = {g for g, r in second.items() if r.status_code == 200}
    held = [r for r in second.values() if r.status_code != 200]
    assert len(let_through) == 1 and len(held) == 19
    assert {(r.status_code, r.headers["retry-after"]) for r in held} == {(429, "2")}
    assert len(checked) == 6 and checked[-1] in let_through
    assert await _counters(ctx) == {account_key(email): (6, clock() + 2), network: (6, 0)}


async def test_parallel_guesses_from_a_known_browser_count_on_its_own_key_alone(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A browser that signed in before (its device cookie) is counted on its own key, with the
    account's free failures and delay: of twenty simultaneous guesses from it exactly the
    five free ones are hashed, the rest are held back before any hash, and neither the
    account's nor the network's counter moves (a stolen cookie's run is no one else's)."""
    await make_user(ctx)
    assert _signed_in(await _try(client, await _login_page(client, ctx), PASSWORD))
    client.cookies.delete(ctx.settings.session_cookie_name)  # signed out; the device stays
    before = await _counters(ctx)  # the network's, its attempt given back
    assert set(before.values()) == {(0, 0)}
    page = await _login_page(client, ctx)
    checked = _hashed_passwords(monkeypatch)
    guesses = [f"guess-{i}" for i in range(20)]
    answers = dict(zip(guesses, await asyncio.gather(*(_try(client, page, g) for g in guesses)),
                       strict=True))
    let_through = {g for g, r in answers.items() if r.status_code == 200}
    assert len(let_through) == 5 and sorted(checked) == sorted(let_through)
    assert {(r.status_code, r.headers["retry-after"]) for g, r in answers.items()
            if g not in let_through} == {(429, "1")}
    counters = await _counters(ctx)
    (device,) = set(counters) - set(before)
    assert device.startswith("device:") and counters.pop(device) == (5, clock() + 1)
    assert counters == before
