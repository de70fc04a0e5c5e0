"""New passwords (issue 12 item 9, NIST SP 800-63B §3.1.1.2): 8 to IDP_PASSWORD_MAX_LENGTH
characters, no composition rules, none from the breached-password list zxcvbn ships, none
built on the account's own address; the same rules on every way a password is set."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from idp.services.context import Context
from idp.settings import Settings
from tests.conftest import ISSUER, make_settings
from tests.helpers import (
    PASSWORD,
    Flow,
    account_sign_in,
    authorize,
    csrf_token,
    make_app,
    make_user,
)
from tests.mailbox import Inbox, deliver, link_in, token_of, with_relay

COMMON = "That password is one of the most common ones"
OWN_ADDRESS = "does not contain your email address"


@pytest.fixture
def settings(database_url: str, inbox: tuple[Inbox, int]) -> Settings:
    return with_relay(make_settings(database_url), inbox[1])


async def register(client: httpx.AsyncClient, ctx: Context, inbox: Any, email: str,
                   password: str) -> httpx.Response:
    """Registration as it is: the address, the mailed link, then the password there."""
    page = await authorize(client, Flow(await make_app(ctx)))
    iid = str(page.url.path).split("/")[2]
    form = await client.get(f"/interaction/{iid}/register")
    await client.post(f"/interaction/{iid}/register", data={
        "csrf_token": csrf_token(form.text), "email": email})
    await deliver(ctx)
    link = link_in(inbox[0].messages[-1])
    choose = await client.get(link.removeprefix(ISSUER))
    return await client.post("/signup", data={
        "csrf_token": csrf_token(choose.text), "token": token_of(link), "password": password})


@pytest.mark.parametrize(("password", "refusal"), [
    ("baseball", COMMON),
    ("BaseBall", COMMON),
    ("iloveyou", COMMON),
    ("1234567890", COMMON),
    ("carol-staple-2026", OWN_ADDRESS),
    ("my CAROL passphrase", OWN_ADDRESS),
])
async def test_registration_refuses_weak_passwords(client: httpx.AsyncClient, ctx: Context,
                                                   inbox: Any, password: str, refusal: str
                                                   ) -> None:
    refused = await register(client, ctx, inbox, "carol@example.com", password)
    assert refused.status_code == 400 and refusal in refused.text
    assert "carol@example.com" not in {u for u in await _emails(ctx)}


async def test_a_long_uncommon_passphrase_is_taken(client: httpx.AsyncClient,
                                                   ctx: Context, inbox: Any) -> None:
    response = await register(client, ctx, inbox, "carol@example.com",
                              "staple horse correct battery")
    assert response.status_code == 303
    assert "carol@example.com" in await _emails(ctx)


async def _emails(ctx: Context) -> set[str]:
    from idp.services.accounts import operators
    return {a.email for a in await operators.find_accounts(ctx, limit=100) if a.email}


async def test_the_account_center_and_reset_use_the_same_rules(
        client: httpx.AsyncClient, ctx: Context, inbox: Any, new_browser: Any) -> None:
    received, _ = inbox
    await make_user(ctx)
    await account_sign_in(client)
    page = await client.get("/account/security")
    refused = await client.post("/account/password", data={
        "csrf_token": csrf_token(page.text.split('action="/account/password"')[1]),
        "current_password": PASSWORD, "new_password": "sunshine"})
    assert COMMON in refused.text
    forgot = await client.get("/account/forgot")
    await client.post("/account/forgot", data={"csrf_token": csrf_token(forgot.text),
                                               "email": "alice@example.com"})
    await deliver(ctx)
    link = link_in(received.messages[0])
    browser = new_browser()
    reset_page = await browser.get(link.removeprefix("https://idp.test"))
    for weak, words in (("superman", COMMON), ("alice-2026-staple", OWN_ADDRESS)):
        answer = await browser.post("/account/reset", data={
            "csrf_token": csrf_token(reset_page.text), "token": token_of(link),
            "new_password": weak})
        assert answer.status_code == 400 and words in answer.text
    # The link survived the refusals.
    done = await browser.post("/account/reset", data={
        "csrf_token": csrf_token(reset_page.text), "token": token_of(link),
        "new_password": "a sturdy uncommon passphrase"})
    assert done.status_code == 200 and "Password changed" in done.text


async def test_the_cli_uses_them_too(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import run_cli
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "users", "create", "--email",
                                 "dave@example.com", "--password", "football")
    assert code == 2 and COMMON in err
