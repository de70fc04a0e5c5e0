"""CCPA/CPRA choices (issue 16 item 5): "do not sell or share my personal information" and
"limit the use of my sensitive personal information" in the account center, the admin API
and the public Do Not Sell page; Global Privacy Control; the `consent` claim of every token,
UserInfo and introspection; the consent ledger and the events apps receive."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select

from idp.services.consent import ledger
from idp.services.context import Context
from idp.store import prepared
from idp.store.models import AdminEvent, OutboxMessage, PrivacyChoice
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    account_sign_in,
    csrf_token,
    get_code,
    make_app,
    make_user,
    redeem,
    run_cli,
)
from tests.test_admin_api import admin_app, bearer, token_of
from tests.test_consent import (
    CLAIMS_CHANGE,
    answer,
    claims_of,
    consent_page,
    define_purposes,
    introspect,
    refresh,
    shop_app,
    tokens_with,
)

PAGE = "/account/privacy/choices"
OFF = {"do_not_sell_or_share": False, "limit_sensitive_use": False}
GPC = {"Sec-GPC": "1"}
ALL_PURPOSES = [{"id": "order_updates", "version": 1}, {"id": "marketing_email", "version": 1},
                {"id": "partner_sharing", "version": 1}]
WITHOUT_SALE = ALL_PURPOSES[:2]


@pytest.fixture
async def alice(ctx: Context) -> str:
    await define_purposes(ctx)
    return await make_user(ctx, name="Alice")


@pytest.fixture
async def api(ctx: Context) -> App:
    return await make_app(ctx, name="API", grant_types=["client_credentials"],
                          scopes=["orders:read"])


async def choices(ctx: Context, user_id: str) -> dict[str, Any] | None:
    async with ctx.db.transaction(read_only=True) as session:
        row = await session.get(PrivacyChoice, user_id)
        if row is None:
            return None
        return {c: getattr(row, c) for c in (
            "do_not_sell_or_share", "do_not_sell_set_by", "limit_sensitive_use",
            "limit_sensitive_set_by", "gpc_override")}


async def events_to(ctx: Context, client_id: str) -> list[dict[str, Any]]:
    async with ctx.db.transaction(read_only=True) as session:
        rows = await session.scalars(select(OutboxMessage).where(
            OutboxMessage.client_id == client_id, OutboxMessage.kind == "security_event")
            .order_by(OutboxMessage.created_at, OutboxMessage.id))
        return [dict(row.payload["claims"]) for row in rows]


async def post_choices(browser: httpx.AsyncClient, headers: dict[str, str] | None = None,
                       **answers: str) -> httpx.Response:
    page = await browser.get(PAGE)
    assert page.status_code == 200, page.text
    return await browser.post(PAGE, data={"csrf_token": csrf_token(page.text), **answers},
                              headers=headers or {})


async def test_choices_reach_every_token_introspection_userinfo_and_the_apps(
        client: httpx.AsyncClient, ctx: Context, alice: str, api: App) -> None:
    shop = await shop_app(ctx, event_uri="https://app.example/events")
    tokens = await tokens_with(client, shop, ["phone"], ["marketing_email", "partner_sharing"])
    for token in (tokens["id_token"], tokens["access_token"]):
        consent = claims_of(token)["consent"]
        assert isinstance(consent, dict)
        assert consent["privacy"] == OFF and consent["purposes"] == ALL_PURPOSES
    await account_sign_in(client)
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert 'id="dns-off" name="do_not_sell_or_share" value="off" checked' in page.text
    assert "You have not chosen yet." in page.text
    changed = await post_choices(client, do_not_sell_or_share="on", limit_sensitive_use="on")
    assert changed.status_code == 303
    location = changed.headers["location"]
    assert re.fullmatch(r"/account/privacy/choices\?change=[\w-]+", location)
    # At once: introspection and UserInfo answer the new choices for the token issued before,
    # and the sale-or-share purpose counts as declined.
    live = await introspect(client, api, tokens["access_token"])
    assert live["active"] is True
    on = {"do_not_sell_or_share": True, "limit_sensitive_use": True}
    assert live["consent"]["privacy"] == on  # type: ignore[index]
    assert live["consent"]["purposes"] == WITHOUT_SALE  # type: ignore[index]
    info = (await client.get("/userinfo", headers=bearer(tokens["access_token"]))).json()
    assert info["consent"]["privacy"] == on and info["consent"]["purposes"] == WITHOUT_SALE
    # Tokens issued from now on carry them.
    renewed = (await refresh(client, shop, tokens["refresh_token"])).json()
    for token in (renewed["id_token"], renewed["access_token"]):
        consent = claims_of(token)["consent"]
        assert consent["privacy"] == on and consent["purposes"] == WITHOUT_SALE  # type: ignore[index]
    # The app is told, with the claim its tokens now carry.
    told = await events_to(ctx, shop.client_id)
    assert len(told) == 1
    claims = told[0]["events"][CLAIMS_CHANGE]
    assert claims["claims"]["consent"]["privacy"] == on
    assert claims["claims"]["consent"]["purposes"] == WITHOUT_SALE
    assert claims["initiating_entity"] == "user"
    assert told[0]["sub_id"]["sub"] == alice
    # One ledger entry, account-wide, in the chain.
    async with ctx.db.transaction(read_only=True) as session:
        entries = await ledger.entries_for_subject(ctx, session, alice)
    assert entries[0].action == "privacy" and entries[0].client_id == ""
    assert entries[0].payload is not None
    assert entries[0].payload["before"] == OFF and entries[0].payload["after"] == on
    assert entries[0].payload["set_by"] == "account"
    assert told[0]["txn"] == entries[0].payload["change_id"]
    assert (await ledger.verify(ctx))[1] == []
    history = (await client.get("/account/privacy")).text
    assert "Your privacy rights choices changed" in history
    assert ("turned on \u201cDo not sell or share my personal information\u201d; turned on "
            "\u201cLimit the use of my sensitive personal information\u201d") in history
    page = await client.get(location)
    assert "Applied to 0 of 1 apps" in page.text  # the event waits in the outbox
    assert "Set by you on" in page.text
    assert "Off in every app while this is on: Share with partners." in page.text
    # Opting in again brings the purpose back (the grant still holds the customer's yes).
    await post_choices(client, do_not_sell_or_share="off")
    again = (await refresh(client, shop, renewed["refresh_token"])).json()
    consent = claims_of(again["access_token"])["consent"]
    assert consent["purposes"] == ALL_PURPOSES  # type: ignore[index]
    assert consent["privacy"] == {"do_not_sell_or_share": False,  # type: ignore[index]
                                  "limit_sensitive_use": True}
    assert len(await events_to(ctx, shop.client_id)) == 2


async def test_the_form_is_checked(client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    assert (await client.get(PAGE)).headers["location"] == "/account/login"
    await account_sign_in(client)
    page = await client.get(PAGE)
    forged = await client.post(PAGE, data={"csrf_token": "x" * 40,
                                           "do_not_sell_or_share": "on"})
    assert forged.status_code == 403
    missing = await client.post(PAGE, data={"do_not_sell_or_share": "on"})
    assert missing.status_code == 403
    bad = await client.post(PAGE, data={"csrf_token": csrf_token(page.text),
                                        "do_not_sell_or_share": "maybe"})
    assert bad.status_code == 400
    assert await choices(ctx, alice) is None
    # Nothing changed: nothing is recorded, nobody is told.
    same = await client.post(PAGE, data={"csrf_token": csrf_token(page.text),
                                         "do_not_sell_or_share": "off"})
    assert same.headers["location"] == f"{PAGE}?change=none"
    async with ctx.db.transaction(read_only=True) as session:
        assert await ledger.entries_for_subject(ctx, session, alice) == []


async def test_gpc_on_the_account_center_opts_out_and_a_confirmed_opt_in_stands(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    # Signed out, the signal names nobody: nothing is stored.
    assert (await client.get("/account/login", headers=GPC)).status_code == 200
    assert await choices(ctx, alice) is None
    await account_sign_in(client)
    assert (await client.get("/account", headers=GPC)).status_code == 200
    assert await choices(ctx, alice) == {
        "do_not_sell_or_share": True, "do_not_sell_set_by": "gpc",
        "limit_sensitive_use": False, "limit_sensitive_set_by": None, "gpc_override": False}
    async with ctx.db.transaction(read_only=True) as session:
        entries = await ledger.entries_for_subject(ctx, session, alice)
    assert [(e.action, e.gpc) for e in entries] == [("privacy", True)]
    # Repeated signals change nothing more.
    page = await client.get(PAGE, headers=GPC)
    assert 'id="gpc-applied"' in page.text
    async with ctx.db.transaction(read_only=True) as session:
        assert len(await ledger.entries_for_subject(ctx, session, alice)) == 1
    # Told of the signal, the customer allows sale and sharing all the same
    # (Cal. Code Regs. tit. 11 §7025(c)(3)): the signal no longer overrides it.
    await post_choices(client, GPC, do_not_sell_or_share="off")
    assert (await choices(ctx, alice) or {})["gpc_override"] is True
    page = await client.get(PAGE, headers=GPC)
    assert 'id="gpc-conflict"' in page.text
    assert (await choices(ctx, alice) or {})["do_not_sell_or_share"] is False
    # Opting out again clears that; the next signal is honoured again after an opt-in
    # made without it.
    await post_choices(client, do_not_sell_or_share="on")
    await post_choices(client, do_not_sell_or_share="off")
    assert (await choices(ctx, alice) or {})["gpc_override"] is False
    await client.get("/account/apps", headers=GPC)
    assert (await choices(ctx, alice) or {})["do_not_sell_set_by"] == "gpc"


async def test_gpc_on_the_consent_page_opts_out_before_the_first_token(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    shop = await shop_app(ctx)
    flow = Flow(shop)
    page = await consent_page(client, flow)
    code = await answer(client, page, [], ["marketing_email", "partner_sharing"], headers=GPC)
    consent = claims_of((await redeem(client, flow, code)).json()["id_token"])["consent"]
    assert consent["privacy"]["do_not_sell_or_share"] is True  # type: ignore[index]
    assert consent["purposes"] == WITHOUT_SALE  # type: ignore[index]
    assert (await choices(ctx, alice) or {})["do_not_sell_set_by"] == "gpc"
    # With do-not-sell on, a sale-or-share purpose starts unticked for the next app too.
    other = await shop_app(ctx, "Magazine", "https://app.example/mag")
    second = await consent_page(client, Flow(other))
    assert re.search(r'value="partner_sharing"\s+aria', second.text)
    assert re.search(r'value="marketing_email"\s+checked', second.text)


def gpc_count(account: str) -> float:
    return REGISTRY.get_sample_value("idp_gpc_signals_total", {"account": account}) or 0.0


async def test_the_public_page_signs_in_and_lands_on_the_choice(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    before = gpc_count("signed_out")
    page = await client.get("/privacy/do-not-sell", headers=GPC)
    assert page.status_code == 200
    assert "Do Not Sell or Share My Personal Information" in page.text
    assert 'id="gpc-signed-out"' in page.text
    assert 'action="/privacy/do-not-sell/sign-in"' in page.text
    assert gpc_count("signed_out") == before + 1
    async with ctx.db.transaction(read_only=True) as session:
        assert await session.scalar(select(func.count()).select_from(PrivacyChoice)) == 0
    assert 'id="gpc-signed-out"' not in (await client.get("/privacy/do-not-sell")).text
    # No form token, a wrong password: no session.
    refused = await client.post("/privacy/do-not-sell/sign-in", data={
        "email": "alice@example.com", "password": PASSWORD})
    assert refused.status_code == 403
    wrong = await client.post("/privacy/do-not-sell/sign-in", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com", "password": "nope"})
    assert wrong.status_code == 200
    assert "The email address or password is not correct." in wrong.text
    signed_in = await client.post("/privacy/do-not-sell/sign-in", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com",
        "password": PASSWORD})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == f"{PAGE}?via=do-not-sell"
    choice = await client.get(signed_in.headers["location"])
    assert 'id="do-not-sell-confirm"' in choice.text
    # Signed in, the public page leads straight to the choice.
    assert (await client.get("/privacy/do-not-sell")).headers["location"] == \
        f"{PAGE}?via=do-not-sell"
    form = choice.text.split('id="do-not-sell-confirm"')[1]
    confirmed = await client.post(PAGE, data={"csrf_token": csrf_token(form),
                                              "do_not_sell_or_share": "on"})
    assert confirmed.status_code == 303
    assert await choices(ctx, alice) == {
        "do_not_sell_or_share": True, "do_not_sell_set_by": "account",
        "limit_sensitive_use": False, "limit_sensitive_set_by": None, "gpc_override": False}
    done = await client.get(f"{PAGE}?via=do-not-sell")
    assert 'id="do-not-sell-confirm"' not in done.text
    assert 'id="dns-on" name="do_not_sell_or_share" value="on" checked' in done.text


async def test_operators_read_and_set_choices_through_the_admin_api(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    shop = await shop_app(ctx, event_uri="https://app.example/events")
    await tokens_with(client, shop, [], [])
    ops = await admin_app(ctx, ["admin:read", "admin:write"])
    writer = bearer(await token_of(client, ops))
    reader = bearer(await token_of(client, ops, "admin:read"))
    url = f"/admin/v1/users/{alice}/privacy-choices"
    read = await client.get(url, headers=reader)
    assert read.status_code == 200
    assert read.json() == {**OFF, "do_not_sell_set_by": None, "do_not_sell_set_at": None,
                           "limit_sensitive_set_by": None, "limit_sensitive_set_at": None,
                           "gpc_override": False, "change_id": None}
    body = {"do_not_sell_or_share": True, "limit_sensitive_use": False}
    assert (await client.put(url, json=body, headers=reader)).status_code == 403
    assert (await client.put(url, json={"do_not_sell_or_share": True},
                             headers=writer)).status_code == 400
    assert (await client.put(url, json={**body, "extra": 1}, headers=writer)).status_code == 400
    missing = await client.put("/admin/v1/users/nobody/privacy-choices", json=body,
                               headers=writer)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert (await client.get("/admin/v1/users/nobody/privacy-choices",
                             headers=reader)).status_code == 404
    put = await client.put(url, json=body, headers=writer)
    assert put.status_code == 200
    answer_ = put.json()
    assert answer_["do_not_sell_or_share"] is True
    assert answer_["do_not_sell_set_by"] == "operator"
    assert answer_["do_not_sell_set_at"] == ctx.now()
    assert answer_["limit_sensitive_set_by"] is None
    assert isinstance(answer_["change_id"], str)
    again = await client.put(url, json=body, headers=writer)
    assert again.json()["change_id"] is None
    async with ctx.db.transaction(read_only=True) as session:
        audited = list(await session.scalars(select(AdminEvent).where(
            AdminEvent.action == "user.privacy_choices")))
        entries = await ledger.entries_for_subject(ctx, session, alice)
    assert [(e.actor, e.target_id) for e in audited] == [(ops.client_id, alice)]
    assert audited[0].before["do_not_sell_or_share"] is False  # type: ignore[index]
    assert audited[0].after["do_not_sell_or_share"] is True  # type: ignore[index]
    assert (entries[0].action, entries[0].channel) == ("privacy", "operator")
    told = await events_to(ctx, shop.client_id)
    assert told[-1]["events"][CLAIMS_CHANGE]["initiating_entity"] == "admin"


async def test_the_token_paths_read_the_choices_with_the_grant(
        client: httpx.AsyncClient, ctx: Context, alice: str, api: App,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No statement of its own: the choices come in the statement that loads the grant, on
    code redemption, refresh, UserInfo and introspection."""
    shop = await shop_app(ctx)
    flow = Flow(shop)
    code = await get_code(client, flow, scope="openid profile offline_access")
    seen: list[str] = []

    def before_cursor_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    direct = prepared._on_asyncpg  # PostgreSQL's hot statements skip SQLAlchemy's events

    async def on_asyncpg(connection: Any, method: str, sql: str, *args: Any) -> Any:
        seen.append(" ".join(sql.split()))
        return await direct(connection, method, sql, *args)

    monkeypatch.setattr(prepared, "_on_asyncpg", on_asyncpg)
    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        tokens = (await redeem(client, flow, code)).json()
        await refresh(client, shop, tokens["refresh_token"])
        await client.get("/userinfo", headers=bearer(tokens["access_token"]))
        await introspect(client, api, tokens["access_token"])
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
    reading = [s for s in seen if "privacy_choices" in s]
    # Redemption, the refresh's locked read, UserInfo, introspection: one each.
    assert len(reading) == 4, reading
    assert all(" grants" in s and " users" in s for s in reading)
    # The grant and its account are one read on redemption (they were two).
    assert not [s for s in seen if s.startswith("SELECT") and "FROM users" in s
                and "grants" not in s]


async def test_the_cli_reads_and_sets_choices(ctx: Context, alice: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "privacy", "choices",
                                 "alice@example.com")
    assert code == 0 and json.loads(out)["do_not_sell_or_share"] is False
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "privacy", "choices", alice,
                                 "--limit-sensitive-use", "on")
    shown = json.loads(out)
    assert code == 0
    assert (shown["limit_sensitive_use"], shown["limit_sensitive_set_by"]) == (True, "operator")
    assert shown["do_not_sell_or_share"] is False and shown["change_id"]
    code, _, err = await run_cli(ctx, monkeypatch, capsys, "privacy", "choices",
                                 "nobody@example.com", "--do-not-sell-or-share", "on")
    assert (code, err.strip()) == (2, "idp: no such account")
    async with ctx.db.transaction(read_only=True) as session:
        audited = list(await session.scalars(select(AdminEvent.actor).where(
            AdminEvent.action == "user.privacy_choices")))
    assert audited == ["cli"]
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "privacy", "statistics",
                                 "--bucket", "week")
    figures = json.loads(out)
    assert code == 0 and figures["bucket"] == "week"
    assert figures["privacy_choices"] == {"do_not_sell_or_share": 0,
                                          "limit_sensitive_use": None}


async def test_the_export_holds_each_choice_with_how_and_when_it_was_set(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    async def exported() -> dict[str, Any]:
        page = await client.get("/account/export")
        response = await client.post("/account/export", data={
            "csrf_token": csrf_token(page.text)})
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    await account_sign_in(client)
    document = await exported()
    assert document["privacy_choices"] == {
        "do_not_sell_or_share": {"on": False, "set_by": None, "set_at": None},
        "limit_sensitive_use": {"on": False, "set_by": None, "set_at": None}}
    await client.get("/account", headers=GPC)
    # The form answers both; the unchanged one keeps how it was set.
    await post_choices(client, do_not_sell_or_share="on", limit_sensitive_use="on")
    document = await exported()
    at = document["exported_at"]
    assert document["privacy_choices"] == {
        "do_not_sell_or_share": {"on": True, "set_by": "gpc", "set_at": at},
        "limit_sensitive_use": {"on": True, "set_by": "account", "set_at": at}}
