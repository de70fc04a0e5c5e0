"""Revoking our access at Google when a customer deletes the account (federation.md §9
requirement 31, §1.7), against a Google fake as strict as Google: its /revoke answers 400
`invalid_token` ("Token expired or revoked") for an expired, revoked or unknown token, and an
expired access token cannot end the grant. What the outbox records for each answer is what
`idp outbox failed` shows the operator. The Google fixtures come from tests/upstreams.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from idp.notifications.dispatcher import Dispatcher
from idp.services.context import Context
from idp.services.senders import outbox_senders
from idp.services.upstream.revocation_sender import UPSTREAM_REVOKE
from idp.store.models import DeliveryAttempt, OutboxMessage
from tests.conftest import FakeClock
from tests.fakes.google import ACCESS_TOKEN_TTL, FakeGoogle
from tests.flows import back_from_upstream, prove_account, start_upstream
from tests.helpers import (
    account_sign_in,
    approve,
    csrf_token,
    make_app,
    make_user,
    run_cli,
)

EMAIL = "alice@gmail.com"  # the Google fake's "gmail" user has this address


@pytest.fixture
async def dispatcher(ctx: Context) -> AsyncIterator[Dispatcher]:
    running = Dispatcher(ctx, transport=httpx.MockTransport(lambda _: httpx.Response(200)),
                         senders=outbox_senders)
    yield running
    await running.close()


async def linked_to_google(browser: httpx.AsyncClient, app: FastAPI, ctx: Context,
                           google: FakeGoogle) -> str:
    """A password account that connected Google (signing in with Google, then proving the
    account with its password); returns the Google token we keep for it: Google's access
    token, as no refresh token comes without offline access."""
    shop = await make_app(ctx)
    await make_user(ctx, email=EMAIL)
    _, start = await start_upstream(browser, shop, "google")
    prompt = await back_from_upstream(browser, app, start, "google")
    assert "already uses this email address" in prompt.text, prompt.text
    page = await prove_account(browser, prompt, EMAIL)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await approve(browser, page)
    assert page.status_code == 303, page.text
    [kept] = [t for t in google.issued if t.startswith("ya29.")]
    assert not [t for t in google.issued if t.startswith("1//")]
    return kept


async def delete_account(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/account/delete")
    assert page.status_code == 200, page.text
    done = await browser.post("/account/delete", data={
        "csrf_token": csrf_token(page.text), "confirmation": EMAIL})
    assert done.status_code == 200 and "Your account was deleted" in done.text


async def revocation_record(ctx: Context) -> tuple[OutboxMessage, list[tuple[Any, ...]]]:
    """The upstream revocation message and its delivery attempts (status, error)."""
    async with ctx.db.transaction() as session:
        [message] = list(await session.scalars(select(OutboxMessage).where(
            OutboxMessage.kind == UPSTREAM_REVOKE)))
        attempts = [(a.status_code, a.error) for a in await session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id)
            .order_by(DeliveryAttempt.attempted_at))]
    return message, attempts


async def failed_revocations(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str]]:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "outbox", "failed", "--json",
                                 "--kind", UPSTREAM_REVOKE)
    assert code == 0
    return [(m["recipient"], m["status"]) for m in json.loads(out)]


@pytest.mark.parametrize(("at_google", "recorded"), [
    ("live", None),
    ("withdrawn", "already invalid (invalid_token)"),
], ids=["live", "already-withdrawn-at-google"])
async def test_what_google_answered_is_what_the_outbox_records(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, clock: FakeClock,
        google: FakeGoogle, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], at_google: str, recorded: str | None) -> None:
    """Deleted right after a Google sign-in, the kept token is live and Google ends the grant;
    if the customer had already removed our app at Google, Google answers 400 invalid_token,
    and the grant is gone all the same. Either way the revocation has gone through: delivered
    at the first attempt (the second with Google's refusal noted), never retried, not listed
    by `idp outbox failed`, and the sealed token is dropped from the message."""
    kept = await linked_to_google(browser, app, ctx, google)
    if at_google == "withdrawn":
        google.withdraw(kept)
    await delete_account(browser)
    assert await dispatcher.run_once() == 1

    assert [c.form for c in google.log.calls("/revoke", "POST")] == [
        {"token": kept, "token_type_hint": "access_token"}]
    assert not google.grant_live(kept)
    assert google.revoked == ({kept} if at_google == "live" else set())
    message, attempts = await revocation_record(ctx)
    assert (message.attempts, message.delivered_at, message.abandoned_at) == (
        1, int(clock()), None)
    assert attempts == [(None, recorded)]
    assert message.payload == {"alias": "google", "type": "google"}
    assert await failed_revocations(ctx, monkeypatch, capsys) == []
    clock.advance(3600)
    assert await dispatcher.run_once() == 0
    assert len(google.log.calls("/revoke")) == 1


async def test_an_expired_google_token_is_not_reported_as_a_revocation(
        browser: httpx.AsyncClient, app: FastAPI, ctx: Context, clock: FakeClock,
        google: FakeGoogle, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Requirement 31 ("failures are retried and reported") and the README ("`idp outbox
    failed` lists what has not gone through"): the customer signed in with Google, and an
    hour later deletes the account after confirming with the password. The access token we
    kept has expired; Google refuses it (400 invalid_token) and keeps the grant. Either our
    access at Google is revoked some other way, or the operator is told it was not."""
    kept = await linked_to_google(browser, app, ctx, google)
    clock.advance(ACCESS_TOKEN_TTL + 60)
    await account_sign_in(browser, EMAIL)  # a recent sign-in, by password
    await delete_account(browser)
    await dispatcher.run_once()
    clock.advance(3600)
    await dispatcher.run_once()

    assert google.log.calls("/revoke", "POST")  # Google was asked
    revoked_at_google = not google.grant_live(kept)
    assert revoked_at_google or await failed_revocations(ctx, monkeypatch, capsys) == [
        ("upstream:google", "abandoned")]
