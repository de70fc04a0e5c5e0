"""Deleting an account (GDPR Art. 17) from the account center or the CLI, and revoking our
access at every linked upstream (federation.md §9 requirement 31, §2.8 Apple's deletion duty,
§1.7 Google revoke, §3 Facebook permissions). Upstreams are the fakes of tests/fakes."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update

from idp.notifications.dispatcher import MAX_ATTEMPTS, Dispatcher, backoff
from idp.services.consent import ledger
from idp.services.context import Context
from idp.services.senders import outbox_senders
from idp.store.models import (
    Base,
    Identity,
    LedgerEntry,
    OutboxMessage,
    SecurityEvent,
    Upstream,
    User,
)
from tests.conftest import FakeClock
from tests.fakes.apple import FakeApple
from tests.fakes.common import transport
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle
from tests.flows import back_from_upstream, prove_account, sign_in_with_apple, start_upstream
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    account_sign_in,
    approve,
    csrf_token,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
    run_cli,
    texts,
    walk,
)
from tests.helpers import unverified_claims as claims
from tests.upstreams import (
    APPLE_SERVICES_ID,
    APPLE_TEAM,
    FACEBOOK_APP_ID,
    FACEBOOK_SECRET,
    GOOGLE_SECRET,
    Browsers,
)

EMAIL = "alice@gmail.com"
SESSION = "__Host-idp_session"
BCL_URI = "https://app.example/backchannel"


class Outage(httpx.AsyncBaseTransport):
    """The fakes behind one transport; a path in `down` answers 503 instead (an upstream
    outage) and is counted."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down: set[str] = set()
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in self.down:
            self.refused.append(request.url.path)
            return httpx.Response(503, text="Service Unavailable")
        return await self.inner.handle_async_request(request)


@pytest.fixture
def outage(ctx: Context, google: FakeGoogle, apple: FakeApple,
           facebook: FakeFacebook) -> Outage:
    """All three upstreams configured together, reached through one transport."""
    wrapper = Outage(transport(google, apple, facebook))
    ctx.upstream_transport = wrapper
    return wrapper


@pytest.fixture
def browser(browsers: Browsers, outage: Outage, google: FakeGoogle, apple: FakeApple,
            facebook: FakeFacebook) -> httpx.AsyncClient:
    """A browser that reaches us and all three fakes, with `outage` between us and them."""
    return browsers(google, apple, facebook)


@pytest.fixture
def app_endpoint() -> list[httpx.Request]:
    return []


@pytest.fixture
async def dispatcher(ctx: Context, app_endpoint: list[httpx.Request]
                     ) -> AsyncIterator[Dispatcher]:
    """The outbox dispatcher; apps' back-channel endpoints answer 200 and are recorded."""

    def receive(request: httpx.Request) -> httpx.Response:
        app_endpoint.append(request)
        return httpx.Response(200)

    running = Dispatcher(ctx, transport=httpx.MockTransport(receive), senders=outbox_senders,
                         allow_private=True)
    yield running
    await running.close()


# --- driving the browser -----------------------------------------------------------------


async def finish_authorization(browser: httpx.AsyncClient, page: httpx.Response) -> str:
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await approve(browser, page)
    assert page.status_code == 303, page.text
    return query_of(page.headers["location"])["code"]


async def link_upstream(browser: httpx.AsyncClient, app: FastAPI, shop: App, alias: str
                        ) -> tuple[Flow, str]:
    """Sign in with the upstream; its email is the account's, so the customer proves the
    account with the password and the identity is linked (requirement 19)."""
    flow, start = await start_upstream(browser, shop, alias)
    prompt = await back_from_upstream(browser, app, start, alias)
    assert "already uses this email address" in prompt.text, prompt.text
    page = await prove_account(browser, prompt, EMAIL)
    return flow, await finish_authorization(browser, page)


async def delete_in_account_center(browser: httpx.AsyncClient, confirmation: str = EMAIL
                                   ) -> httpx.Response:
    page = await browser.get("/account/delete")
    assert page.status_code == 200, page.text
    return await browser.post("/account/delete", data={
        "csrf_token": csrf_token(page.text), "confirmation": confirmation})


async def linked_customer(browser: httpx.AsyncClient, app: FastAPI, ctx: Context,
                          google: FakeGoogle, apple: FakeApple, facebook: FakeFacebook
                          ) -> tuple[App, str, dict[str, Any]]:
    """A password account with Google, Apple and Facebook linked, signed in to a brand app
    that keeps a refresh token; returns the app, our sub and the app's tokens."""
    shop = await make_app(ctx, long_sessions=True, backchannel_logout_uri=BCL_URI,
                          grant_types=["authorization_code", "refresh_token"])
    user_id = await make_user(ctx, email=EMAIL)
    apple.login_user = "shares_gmail"
    apple.users["shares_gmail"].email = EMAIL
    facebook.users["fay"].email = EMAIL
    for alias in ("google", "apple"):
        await link_upstream(browser, app, shop, alias)
    flow, code = await link_upstream(browser, app, shop, "facebook")
    tokens = (await redeem(browser, flow, code)).json()
    assert claims(tokens["id_token"])["sub"] == user_id and "refresh_token" in tokens
    async with ctx.db.transaction() as session:
        aliases = set(await session.scalars(
            select(Identity.alias).where(Identity.user_id == user_id)))
    assert aliases == {"google", "apple", "facebook"}
    return shop, user_id, tokens


async def all_rows(ctx: Context) -> dict[str, str]:
    """Every table's rows as text, for looking for what should be gone."""
    found: dict[str, str] = {}
    async with ctx.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            found[table.name] = "\n".join(repr(tuple(row)) for row in rows)
    return found


# --- the tests -----------------------------------------------------------------------------


async def test_deleting_the_account_revokes_at_every_upstream_and_erases_everything(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, google: FakeGoogle,
        apple: FakeApple, facebook: FakeFacebook, dispatcher: Dispatcher,
        app_endpoint: list[httpx.Request], caplog: pytest.LogCaptureFixture,
        new_browser: Browsers, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Requirement 31: after a customer with Google, Apple and Facebook linked deletes the
    account, Apple gets /auth/revoke with the refresh token of the first code exchange,
    Google /revoke, Facebook DELETE /{asid}/permissions. The app is told (back-channel
    logout), its tokens die, the password stops working, nothing of the customer survives
    but anonymised consent records, the ledger still verifies, and no token is logged."""
    shop, user_id, tokens = await linked_customer(browser, app, ctx, google, apple, facebook)
    apple_refresh = next(t for t in apple.issued if t in apple.refresh_tokens)
    google_token = next(t for t in google.issued if t.startswith("ya29."))
    asid = facebook.asid(facebook.users["fay"], FACEBOOK_APP_ID)
    privacy = await browser.get("/account/privacy")
    assert 'href="/account/delete"' in privacy.text
    for name in ("httpx", "idp"):
        caplog.set_level(logging.DEBUG, logger=name)

    page = await browser.get("/account/delete")
    assert "Google" in page.text and "Apple" in page.text and "Facebook" in page.text
    assert "Shop" in page.text and "anonymised" in page.text
    done = await delete_in_account_center(browser)
    assert done.status_code == 200 and "Your account was deleted" in done.text
    assert not browser.cookies.get(SESSION)
    assert not apple.log.calls("/auth/revoke")  # the customer does not wait for upstreams
    assert await dispatcher.run_once() >= 3

    revoked = apple.log.calls("/auth/revoke", "POST")
    assert [(r.form["token"], r.form["token_type_hint"], r.form["client_id"])
            for r in revoked] == [(apple_refresh, "refresh_token", APPLE_SERVICES_ID)]
    assert [r.form["token"] for r in google.log.calls("/revoke", "POST")] == [google_token]
    assert facebook.log.calls(rf"/v\d+\.\d+/{asid}/permissions", "DELETE")
    assert facebook.removed == [(FACEBOOK_APP_ID, asid)]
    # The app was signed out over the back channel.
    logout = [parse_qs(r.content.decode())["logout_token"][0] for r in app_endpoint
              if str(r.url) == BCL_URI]
    assert logout and all(claims(t)["sub"] == user_id for t in logout)
    # No upstream token, secret or sealed form in any log line.
    logged = texts(caplog.records)
    for secret in (apple_refresh, google_token, FACEBOOK_SECRET, GOOGLE_SECRET):
        assert secret not in logged
    assert "upstream_revoke to upstream:apple: attempt 1 delivered" in logged

    # The app's tokens are dead: introspection says inactive, refresh is refused.
    introspected = await browser.post("/introspect", data={"token": tokens["access_token"]},
                                      headers=shop.basic())
    assert introspected.json() == {"active": False}
    refreshed = await browser.post("/token", headers=shop.basic(), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    # The ledger keeps anonymised entries (payloads erased) and its chain verifies.
    count, problems = await ledger.verify(ctx)
    assert count >= 2 and problems == []
    assert (await run_cli(ctx, monkeypatch, capsys, "ledger", "verify"))[0] == 0
    async with ctx.db.transaction() as session:
        entries = list(await session.scalars(select(LedgerEntry).where(
            LedgerEntry.subject_ref == ledger.subject_ref(ctx, user_id))))
        events = list(await session.scalars(select(SecurityEvent).where(
            SecurityEvent.user_id == user_id)))
    assert {"grant", "withdraw"} <= {e.action for e in entries}
    assert all(e.payload is None for e in entries)
    assert [(e.kind, e.detail["initiator"]) for e in events] == [("account_deleted", "customer")]
    # Nothing holds the customer's data: not the email, names, upstream subjects or tokens.
    rows = await all_rows(ctx)
    person = apple.users["shares_gmail"]
    for needle in (EMAIL, "Alice Gmail", "Fay Book", person.first_name + " " + person.last_name,
                   google.users["gmail"].sub, apple.sub_for(person, APPLE_TEAM), asid,
                   apple_refresh, google_token):
        assert not [name for name, dump in rows.items() if needle in dump], needle
    # Our sub remains only where the deletion is recorded and in the apps' notifications.
    assert {name for name, dump in rows.items() if user_id in dump} <= {
        "security_events", "outbox"}

    # The password no longer works ...
    other = new_browser()
    again = await walk(other, await other.get("/authorize", params=Flow(shop).params()))
    assert "not correct" in (await login(other, again, EMAIL, PASSWORD)).text
    # ... and the address is free: a new account with it gets a new sub.
    fresh_id = await make_user(ctx, email=EMAIL)
    flow = Flow(shop)
    page = await walk(other, await other.get("/authorize", params=flow.params()))
    page = await login(other, page, EMAIL, PASSWORD)
    fresh = (await redeem(other, flow, await finish_authorization(other, page))).json()
    assert claims(fresh["id_token"])["sub"] == fresh_id != user_id


async def test_a_failing_upstream_is_retried_with_backoff_then_reported(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, clock: FakeClock, apple: FakeApple,
        outage: Outage, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Requirement 31 ("failures are retried and reported"): Apple answering 503 is asked
    again only after the backoff; while it fails, and once it is given up, the operator sees
    it in `idp outbox failed`, without any token."""
    shop = await make_app(ctx)
    flow, code = await sign_in_with_apple(browser, app, shop)
    user_id = claims((await redeem(browser, flow, code)).json()["id_token"])["sub"]
    refresh = next(t for t in apple.issued if t in apple.refresh_tokens)
    outage.down.add("/auth/revoke")
    caplog.set_level(logging.DEBUG, logger="idp")
    assert (await delete_in_account_center(browser, "delete")).status_code == 200

    assert await dispatcher.run_once() == 0
    assert outage.refused == ["/auth/revoke"]
    assert await dispatcher.run_once() == 0  # not before the backoff
    assert outage.refused == ["/auth/revoke"]
    clock.advance(backoff(1))
    assert await dispatcher.run_once() == 0
    assert len(outage.refused) == 2
    code_, out, _ = await run_cli(ctx, monkeypatch, capsys, "outbox", "failed", "--json")
    assert code_ == 0
    [listed] = json.loads(out)
    assert (listed["kind"], listed["recipient"], listed["status"], listed["attempts"]) == (
        "upstream_revoke", "upstream:apple", "retrying", 2)
    for attempt in range(3, MAX_ATTEMPTS + 1):
        clock.advance(backoff(attempt - 1))
        await dispatcher.run_once()
    assert len(outage.refused) == MAX_ATTEMPTS
    clock.advance(3600)
    await dispatcher.run_once()
    assert len(outage.refused) == MAX_ATTEMPTS  # given up: no more attempts
    code_, out, _ = await run_cli(ctx, monkeypatch, capsys, "outbox", "failed", "--json",
                                  "--kind", "upstream_revoke")
    [listed] = json.loads(out)
    assert (listed["status"], listed["attempts"], listed["abandoned_at"]) == (
        "abandoned", MAX_ATTEMPTS, int(clock()) - 3600)
    code_, plain, _ = await run_cli(ctx, monkeypatch, capsys, "outbox", "failed")
    assert plain.split()[:3] == [listed["id"], "upstream_revoke", "upstream:apple"]
    assert refresh not in out + plain and refresh not in texts(caplog.records)
    # Given up, the message keeps no sealed token of the deleted customer (PRIV-01).
    async with ctx.db.transaction() as session:
        kept = await session.get(OutboxMessage, listed["id"])
    assert kept is not None and kept.payload == {"alias": "apple", "type": "apple"}
    assert "upstream revocation at apple failed" in texts(caplog.records)
    # Only the upstream message failed; the app notifications were delivered.
    assert not json.loads((await run_cli(ctx, monkeypatch, capsys, "outbox", "failed",
                                         "--json", "--kind", "backchannel_logout"))[1])
    assert not apple.log.calls("/auth/revoke")  # none reached Apple
    assert user_id not in (await all_rows(ctx))["users"]


async def test_an_upstream_that_recovers_gets_the_revocation(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, clock: FakeClock, apple: FakeApple,
        outage: Outage, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Requirement 31: after an outage the retry reaches Apple with the kept refresh token,
    and the message is no longer listed as failed."""
    shop = await make_app(ctx)
    await sign_in_with_apple(browser, app, shop)
    refresh = next(t for t in apple.issued if t in apple.refresh_tokens)
    outage.down.add("/auth/revoke")
    await delete_in_account_center(browser, "DELETE")
    await dispatcher.run_once()
    outage.down.clear()
    clock.advance(backoff(1))
    assert await dispatcher.run_once() == 1
    assert [r.form["token"] for r in apple.log.calls("/auth/revoke")] == [refresh]
    assert json.loads((await run_cli(ctx, monkeypatch, capsys, "outbox", "failed",
                                     "--json"))[1]) == []
    async with ctx.db.transaction() as session:
        payloads = list(await session.scalars(text(
            "SELECT payload FROM outbox WHERE kind = 'upstream_revoke'")))
    # Once delivered, the message keeps no sealed token.
    assert "sealed_token" not in str(payloads) and "apple" in str(payloads)


async def test_an_upstream_removed_since_is_abandoned_and_reported(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, apple: FakeApple,
        dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Requirement 31: an upstream no longer configured cannot be asked; the revocation is
    abandoned at once and listed for the operator."""
    shop = await make_app(ctx)
    await sign_in_with_apple(browser, app, shop)
    await delete_in_account_center(browser, "DELETE")
    async with ctx.db.transaction() as session:
        await session.execute(update(Upstream).where(Upstream.alias == "apple")
                              .values(enabled=False))
    ctx.upstream_clients.clear()
    await dispatcher.run_once()
    [listed] = json.loads((await run_cli(ctx, monkeypatch, capsys, "outbox", "failed",
                                         "--json"))[1])
    assert (listed["status"], listed["attempts"], listed["last_error"]) == (
        "abandoned", 1, "upstream no longer configured")
    assert not apple.log.calls("/auth/revoke")


async def test_a_dispatcher_without_the_upstream_sender_leaves_revocations_waiting(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, apple: FakeApple,
        dispatcher: Dispatcher, app_endpoint: list[httpx.Request]) -> None:
    """A dispatcher that can only reach apps (the notifications default) does not lease, and
    so never gives up, an upstream revocation: it stays due until a dispatcher with the
    upstream sender delivers it."""
    shop = await make_app(ctx)
    await sign_in_with_apple(browser, app, shop)
    await delete_in_account_center(browser, "DELETE")
    apps_only = Dispatcher(ctx, timeout=2, allow_private=True, transport=httpx.MockTransport(
        lambda request: app_endpoint.append(request) or httpx.Response(200)))
    try:
        await apps_only.run_once()
    finally:
        await apps_only.close()
    async with ctx.db.transaction() as session:
        [waiting] = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == "upstream_revoke")))
        assert (waiting.attempts, waiting.abandoned_at, waiting.delivered_at) == (0, None, None)
    assert await dispatcher.run_once() == 1
    assert apple.log.calls("/auth/revoke")


async def test_deletion_needs_a_recent_sign_in(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    """Requirement 25 applied to deletion: a session older than `recent_auth_seconds` is sent
    to confirm who it is first (303 to /account/reauth, back to the deletion page after)."""
    await make_user(ctx, email=EMAIL)
    await account_sign_in(client, EMAIL)
    page = await client.get("/account/delete")
    clock.advance(ctx.settings.recent_auth_seconds + 1)
    stale = await client.post("/account/delete", data={
        "csrf_token": csrf_token(page.text), "confirmation": EMAIL})
    assert stale.status_code == 303
    assert stale.headers["location"] == "/account/reauth?next=/account/delete"
    again = await client.get("/account/delete")
    assert again.status_code == 303
    assert again.headers["location"] == "/account/reauth?next=/account/delete"
    assert await user_exists(ctx, EMAIL)


async def test_wrong_confirmation_or_missing_csrf_deletes_nothing(
        client: httpx.AsyncClient, ctx: Context, new_browser: Browsers) -> None:
    """The form needs this browser's CSRF token and the typed email or DELETE."""
    await make_user(ctx, email=EMAIL)
    await account_sign_in(client, EMAIL)
    page = await client.get("/account/delete")
    token = csrf_token(page.text)
    for typed in ("", "yes", "bob@gmail.com", "DELETE ME"):
        wrong = await client.post("/account/delete", data={"csrf_token": token,
                                                           "confirmation": typed})
        assert wrong.status_code == 400 and "Type your email address" in wrong.text
    for data in ({"confirmation": EMAIL}, {"csrf_token": "forged", "confirmation": EMAIL}):
        refused = await client.post("/account/delete", data=data)
        assert refused.status_code == 403 and "form has expired" in refused.text
    overview = await client.get("/account")
    logout_token = overview.text.split('action="/account/logout">')[1].split(
        'value="')[1].split('"')[0]
    other_purpose = await client.post("/account/delete", data={
        "csrf_token": logout_token, "confirmation": EMAIL})
    assert other_purpose.status_code == 403
    # Another browser with its own session cannot use this browser's token.
    other = new_browser()
    await account_sign_in(other, EMAIL)
    stolen = await other.post("/account/delete", data={"csrf_token": token,
                                                       "confirmation": EMAIL})
    assert stolen.status_code == 403
    signed_out = new_browser()
    anonymous = await signed_out.post("/account/delete", data={"csrf_token": token,
                                                               "confirmation": EMAIL})
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/account/login"
    assert await user_exists(ctx, EMAIL)
    # The right answer, in any case, works.
    done = await client.post("/account/delete", data={"csrf_token": token,
                                                      "confirmation": "  Alice@Gmail.com "})
    assert done.status_code == 200 and not await user_exists(ctx, EMAIL)
    assert (await other.get("/account")).headers["location"] == "/account/login"


async def test_operator_deletes_an_account_with_the_cli(
        client: httpx.AsyncClient, ctx: Context, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`idp users delete <email-or-id> --yes` runs the same erasure, initiated by the
    operator; without --yes nothing happens; an unknown account is an error."""
    user_id = await make_user(ctx, email=EMAIL)
    bob = await make_user(ctx, email="bob@example.com")
    await account_sign_in(client, EMAIL)
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "users", "delete", EMAIL)
    assert code == 2 and "--yes" in err and await user_exists(ctx, EMAIL)
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "users", "delete", EMAIL,
                                   "--yes", "--json")
    assert code == 0, err
    assert json.loads(out) == {"sub": user_id, "deleted": True, "apps_disconnected": 0,
                               "sessions_ended": 1, "upstream_revocations": 0}
    assert not await user_exists(ctx, EMAIL)
    assert (await client.get("/account")).headers["location"] == "/account/login"
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "users", "delete", EMAIL, "--yes")
    assert (code, err) == (2, "idp: no such account\n")
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "users", "delete", bob, "--yes")
    assert code == 0 and out.startswith(f"deleted {bob}:")
    async with ctx.db.transaction() as session:
        kinds = [(e.user_id, e.kind, e.detail["initiator"]) for e in await session.scalars(
            select(SecurityEvent).order_by(SecurityEvent.created_at, SecurityEvent.user_id))]
    assert sorted(kinds) == sorted([(user_id, "account_deleted", "operator"),
                                    (bob, "account_deleted", "operator")])


async def user_exists(ctx: Context, email: str) -> bool:
    async with ctx.db.transaction() as session:
        return await session.scalar(select(User.id).where(User.email == email)) is not None


def test_account_ids_never_read_as_command_line_options() -> None:
    """A sub or client_id starting with '-' made `idp users delete <id>` and
    `idp purposes assign --client <id>` fail about one run in thirty-two (argparse took it
    for an option). New ones start with a letter or digit."""
    from idp.crypto.handles import new_public_id

    subjects = {new_public_id() for _ in range(2000)}
    assert len(subjects) == 2000
    assert all(s[0].isalnum() and len(s) == 22 for s in subjects)


async def test_an_older_id_starting_with_a_dash_is_given_after_the_separator(
        ctx: Context, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    user_id = await make_user(ctx, email="old@example.com")
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user_id).values(id="-older-id"))
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "users", "delete", "--yes", "--",
                                   "-older-id")
    assert code == 0, err
    assert out.startswith("deleted -older-id:")
    assert not await user_exists(ctx, "old@example.com")
