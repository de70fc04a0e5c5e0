"""Consent as the product: purposes, choices on the consent page, consent in every token,
the account center, withdrawal that reaches every app at once, policy versions, GPC, the
ledger and the Grant API."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import jwt as pyjwt
import pytest
from sqlalchemy import text

from idp.cli import main as idp_cli
from idp.notifications.dispatcher import Dispatcher
from idp.services.consent import ledger, purposes
from idp.services.context import Context
from idp.store import grants as grant_store
from idp.store import purposes as purpose_store
from idp.store import users as user_store
from idp.store.models import Grant
from tests.conftest import ISSUER
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    authorize,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
)
from tests.receiver import Receiver

CLAIMS_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
SCOPES = ["openid", "profile", "email", "phone", "offline_access"]
GRANTS = ["authorization_code", "refresh_token"]


async def define_purposes(ctx: Context) -> None:
    await purposes.create_purpose(
        ctx, purpose_id="order_updates", title="Order updates",
        description="We email you about the orders you place.",
        data_categories=["identity"], legal_basis="contract")
    await purposes.create_purpose(
        ctx, purpose_id="marketing_email", title="Offers by email",
        description="We email you offers we think you will like.",
        data_categories=["identity", "behavioral"])
    await purposes.create_purpose(
        ctx, purpose_id="partner_sharing", title="Share with partners",
        description="We share your purchase history with partner brands.",
        data_categories=["behavioral"], sale_or_share=True)


async def shop_app(ctx: Context, name: str = "Shop", redirect: str = "https://app.example/cb",
                   event_uri: str | None = None) -> App:
    app = await make_app(ctx, name=name, redirect_uri=redirect, grant_types=GRANTS,
                         scopes=SCOPES, optional_scopes=["phone"], event_uri=event_uri)
    await purposes.set_client_purposes(ctx, app.client_id, {
        "order_updates": True, "marketing_email": False, "partner_sharing": False})
    return app


@pytest.fixture
async def setup(ctx: Context) -> None:
    await define_purposes(ctx)
    await make_user(ctx, name="Alice")


def form(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """httpx takes repeated fields only as an encoded body."""
    return {"content": urlencode(pairs),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


async def consent_page(browser: httpx.AsyncClient, flow: Flow, **extra: str) -> httpx.Response:
    scope = extra.pop("scope", "openid profile email phone offline_access")
    page = await authorize(browser, flow, scope=scope, **extra)
    if urlsplit(str(page.url)).path.endswith("/login"):
        page = await login(browser, page)
    assert urlsplit(str(page.url)).path.endswith("/consent"), page.text
    return page


async def answer(browser: httpx.AsyncClient, page: httpx.Response, scopes: list[str],
                 chosen: list[str], headers: dict[str, str] | None = None) -> str:
    data = [("csrf_token", csrf_token(page.text)), ("decision", "allow")]
    data += [("scope", s) for s in scopes] + [("purpose", p) for p in chosen]
    request = form(data)
    request["headers"].update(headers or {})  # type: ignore[attr-defined]
    response = await browser.post(urlsplit(str(page.url)).path, **request)
    response = await follow_to_page(browser, response)
    assert response.status_code == 303, response.text
    return query_of(response.headers["location"])["code"]


async def tokens_with(browser: httpx.AsyncClient, app: App, scopes: list[str],
                      chosen: list[str], **extra: str) -> dict[str, str]:
    flow = Flow(app)
    page = await consent_page(browser, flow, **extra)
    code = await answer(browser, page, scopes, chosen)
    response = await redeem(browser, flow, code)
    assert response.status_code == 200, response.text
    return response.json()


def claims_of(token: str) -> dict[str, object]:
    return pyjwt.decode(token, options={"verify_signature": False})


async def introspect(http: httpx.AsyncClient, api: App, token: str) -> dict[str, object]:
    response = await http.post("/introspect", data={"token": token}, headers=api.basic())
    return response.json()


async def refresh(http: httpx.AsyncClient, app: App, token: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": "refresh_token",
                                           "refresh_token": token}, headers=app.basic())


async def account_login(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/account/login")
    response = await browser.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/account"


async def test_consent_page_groups_data_and_explains_purposes(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    app = await shop_app(ctx)
    page = await consent_page(client, Flow(app))
    assert "Who you are" in page.text and "About you" in page.text
    for text_ in ("We email you about the orders you place.",
                  "We email you offers we think you will like.",
                  "This shares your data with partners."):
        assert text_ in page.text
    # Required purpose: no checkbox. Optional ones: checkboxes, on by default without GPC.
    assert 'name="purpose" value="order_updates"' not in page.text
    assert re.search(r'value="marketing_email"\s+checked', page.text)
    assert re.search(r'value="partner_sharing"\s+checked', page.text)
    assert re.search(r'name="scope" value="phone" checked', page.text)


async def test_declined_optional_items_stay_out_of_every_token(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    app = await shop_app(ctx)
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    tokens = await tokens_with(client, app, scopes=[], chosen=["marketing_email"])
    id_claims, at_claims = claims_of(tokens["id_token"]), claims_of(tokens["access_token"])
    assert tokens["scope"] == "openid profile email offline_access"  # phone declined
    for consent in (id_claims["consent"], at_claims["consent"]):
        assert consent["purposes"] == [{"id": "order_updates", "version": 1},
                                       {"id": "marketing_email", "version": 1}]
        assert consent["gpc"] is False
        assert consent["scopes"] == ["openid", "profile", "email", "offline_access"]
    info = await client.get("/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.json()["consent"]["purposes"] == id_claims["consent"]["purposes"]
    assert "phone_number" not in info.json()
    assert (await introspect(client, api, tokens["access_token"]))["consent"] == at_claims[
        "consent"]


def readme_consent_example() -> dict[str, object]:
    """The JSON example under the README's "The `consent` claim"."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The `consent` claim", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "the README documents the consent claim with a JSON example"
    example: dict[str, object] = json.loads(block.group(1))
    return example


async def test_the_readme_example_is_the_consent_claim_tokens_carry(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    """A backend copies the README's example: every member it shows, and no other, is in the
    claim of a real ID token, access token, UserInfo and introspection answer, with the
    documented types."""
    documented = readme_consent_example()["consent"]
    assert isinstance(documented, dict)
    app = await shop_app(ctx)
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    tokens = await tokens_with(client, app, scopes=[], chosen=["marketing_email"])
    info = await client.get("/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    carried = [claims_of(tokens["id_token"])["consent"],
               claims_of(tokens["access_token"])["consent"], info.json()["consent"],
               (await introspect(client, api, tokens["access_token"]))["consent"]]
    for consent in carried:
        assert isinstance(consent, dict)
        assert set(consent) == set(documented)
        for name, value in documented.items():
            assert type(consent[name]) is type(value), name
        assert consent["purposes"], "a purpose was agreed to"
        for purpose in consent["purposes"]:
            assert set(purpose) == set(documented["purposes"][0])
            assert {type(v) for v in purpose.values()} == {
                type(v) for v in documented["purposes"][0].values()}


async def test_consent_is_remembered_declines_included(client: httpx.AsyncClient, ctx: Context,
                                                       setup: None) -> None:
    app = await shop_app(ctx)
    await tokens_with(client, app, scopes=[], chosen=[])
    # Declined optional items count as answered: prompt=none succeeds silently.
    flow = Flow(app)
    silent = await client.get("/authorize", params=flow.params(
        scope="openid profile email phone offline_access", prompt="none"))
    code = query_of(silent.headers["location"])["code"]
    body = (await redeem(client, flow, code)).json()
    assert claims_of(body["id_token"])["consent"]["purposes"] == [
        {"id": "order_updates", "version": 1}]
    # prompt=consent asks again.
    again = await client.get("/authorize", params=Flow(app).params(
        scope="openid profile", prompt="consent"))
    assert urlsplit(again.headers["location"]).path.endswith("/consent")


async def test_the_grant_and_the_purposes_read_together_are_those_read_apart(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    """An authorization for a signed-in customer reads their grant and the app's purposes in
    one statement: the same grant and the same purposes, in the same order (required first),
    as the two reads it replaced, with a grant and without one, with purposes and without."""
    shop = await shop_app(ctx)
    plain = await make_app(ctx, name="Plain")
    await tokens_with(client, shop, scopes=[], chosen=[])
    async with ctx.db.transaction(read_only=True) as session:
        account = await user_store.find_by_email(session, "alice@example.com")
    assert account is not None
    alice, bo = account.id, await make_user(ctx, email="bo@example.com")
    async with ctx.db.statements() as connection:
        for user_id, app in [(alice, shop), (bo, shop), (alice, plain), (bo, plain)]:
            grant, together = await grant_store.grant_and_purposes(connection, user_id,
                                                                     app.client_id)
            apart = await grant_store.grant_of(connection, user_id, app.client_id)
            assert together == await purpose_store.purposes_of_client(connection,
                                                                      app.client_id)
            if apart is None:
                assert grant is None
            else:
                assert grant is not None
                assert {c.key: getattr(grant, c.key) for c in Grant.__table__.c} == \
                    {c.key: getattr(apart, c.key) for c in Grant.__table__.c}
        _, purposes_of_shop = await grant_store.grant_and_purposes(connection, bo,
                                                                     shop.client_id)
        granted, _ = await grant_store.grant_and_purposes(connection, alice, shop.client_id)
    assert granted is not None and granted.user_id == alice and granted.revoked_at is None
    assert [p.id for p in purposes_of_shop] == [
        "order_updates", "marketing_email", "partner_sharing"]
    assert [p.required for p in purposes_of_shop] == [True, False, False]


async def test_prompt_none_without_consent_is_consent_required(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    first, second = await shop_app(ctx), await shop_app(ctx, "Other", "https://app.example/o")
    await tokens_with(client, first, scopes=["phone"], chosen=[])
    response = await client.get("/authorize", params=Flow(second).params(
        scope="openid", prompt="none"))
    assert query_of(response.headers["location"])["error"] == "consent_required"


async def test_raising_a_purpose_version_asks_again_everywhere(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    app = await shop_app(ctx)
    await tokens_with(client, app, scopes=["phone"], chosen=["marketing_email"])
    updated = await purposes.update_purpose(ctx, "marketing_email",
                                            description="We email and text you offers.")
    assert updated.version == 2
    stale = await client.get("/authorize", params=Flow(app).params(
        scope="openid", prompt="none"))
    assert query_of(stale.headers["location"])["error"] == "consent_required"
    tokens = await tokens_with(client, app, scopes=["phone"], chosen=["marketing_email"],
                               scope="openid")
    assert {"id": "marketing_email", "version": 2} in claims_of(tokens["id_token"])[
        "consent"]["purposes"]
    # A wording fix that is not material keeps the version: nobody is asked again.
    kept = await purposes.update_purpose(ctx, "marketing_email", title="Offers",
                                         material=False)
    assert kept.version == 2
    silent = await client.get("/authorize", params=Flow(app).params(scope="openid",
                                                                    prompt="none"))
    assert "code" in query_of(silent.headers["location"])


async def test_global_privacy_control(client: httpx.AsyncClient, ctx: Context,
                                      setup: None) -> None:
    app = await shop_app(ctx)
    flow = Flow(app)
    page = await consent_page(client, flow)
    gpc_page = await client.get(str(page.url), headers={"Sec-GPC": "1"})
    assert "Global Privacy Control" in gpc_page.text
    assert re.search(r'value="partner_sharing"\s+aria', gpc_page.text)  # not checked
    assert re.search(r'value="marketing_email"\s+checked', gpc_page.text)
    code = await answer(client, gpc_page, ["phone"], ["marketing_email"],
                        headers={"Sec-GPC": "1"})
    tokens = (await redeem(client, flow, code)).json()
    consent = claims_of(tokens["access_token"])["consent"]
    assert consent["gpc"] is True
    assert {"id": "partner_sharing", "version": 1} not in consent["purposes"]
    async with ctx.db.transaction() as session:
        entries = await ledger.entries_for_subject(ctx, session, claims_of(
            tokens["id_token"])["sub"])
    assert entries[0].gpc is True


async def test_withdrawing_one_purpose_reaches_every_app_at_once(
        new_browser, ctx: Context, setup: None) -> None:  # type: ignore[no-untyped-def]
    """The end-to-end promise: one optional purpose withdrawn in the account center."""
    receiver = Receiver(status=202)
    await receiver.start()
    browser = new_browser()
    shop = await shop_app(ctx, event_uri=receiver.url)
    other = await shop_app(ctx, "Magazine", "https://app.example/mag")
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    shop_tokens = await tokens_with(browser, shop, ["phone"], ["marketing_email"])
    other_tokens = await tokens_with(browser, other, ["phone"], ["marketing_email"])
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    ctx.outbox_signal = dispatcher.wake.set
    task = asyncio.create_task(dispatcher.run_forever(interval=0.2))
    try:
        await account_login(browser)
        app_page = await browser.get(f"/account/apps/{shop.client_id}")
        assert "Offers by email" in app_page.text
        changed = await browser.post(f"/account/apps/{shop.client_id}", **form([
            ("csrf_token", csrf_token(app_page.text)), ("scope", "phone")]))
        assert changed.status_code == 303
        # In the same instant: the refresh token is refused, the access token inactive.
        assert (await refresh(browser, shop, shop_tokens["refresh_token"])).json()[
            "error"] == "invalid_grant"
        assert (await introspect(browser, api, shop_tokens["access_token"])) == {
            "active": False}
        # The second app keeps working untouched.
        assert (await introspect(browser, api, other_tokens["access_token"]))["active"]
        assert (await refresh(browser, other, other_tokens["refresh_token"])).status_code == 200
        # The app's receiver gets a signed event within 2 seconds.
        await asyncio.wait_for(receiver.arrived.wait(), timeout=2)
        # The dispatcher records the delivery once the app has answered, and the customer
        # sees the change applied to every app it concerns (read before the dispatcher
        # stops: stopping it between the app's answer and the record would lose the record).
        overview = await browser.get(changed.headers["location"])
        for _ in range(40):
            if "Applied to 1 of 1 apps." in overview.text:
                break
            await asyncio.sleep(0.05)
            overview = await browser.get(changed.headers["location"])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        ctx.outbox_signal = None
        await dispatcher.close()
        await receiver.stop()
    content_type, body = receiver.bodies[0]
    assert content_type == "application/secevent+jwt"
    jwks = {k["kid"]: k for k in (await browser.get("/jwks")).json()["keys"]}
    header = pyjwt.get_unverified_header(body.decode())
    assert header["typ"] == "secevent+jwt"
    event = pyjwt.decode(body.decode(), pyjwt.PyJWK(jwks[header["kid"]]).key,
                         algorithms=["RS256"], audience=shop.client_id, issuer=ISSUER)
    new_consent = event["events"][CLAIMS_CHANGE]["claims"]["consent"]
    assert new_consent["purposes"] == [{"id": "order_updates", "version": 1}]
    assert event["sub_id"] == {"format": "iss_sub", "iss": ISSUER,
                               "sub": claims_of(shop_tokens["id_token"])["sub"]}
    assert "Applied to 1 of 1 apps." in overview.text
    # The history is on the privacy page (issue 15 item 7: a section of its own).
    assert "stopped Offers by email" in (await browser.get("/account/privacy")).text
    # The app re-authorizes silently and gets the narrower consent.
    flow = Flow(shop)
    silent = await browser.get("/authorize", params=flow.params(
        scope="openid profile email phone offline_access", prompt="none"))
    code = query_of(silent.headers["location"])["code"]
    fresh = (await redeem(browser, flow, code)).json()
    assert claims_of(fresh["access_token"])["consent"]["purposes"] == new_consent["purposes"]


async def test_event_for_an_app_that_was_down_arrives_once(
        new_browser, ctx: Context, clock, setup: None) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver(status=202)
    browser = new_browser()
    shop = await shop_app(ctx, event_uri=receiver.url)
    await tokens_with(browser, shop, ["phone"], ["marketing_email"])
    await account_login(browser)
    app_page = await browser.get(f"/account/apps/{shop.client_id}")
    changed = await browser.post(f"/account/apps/{shop.client_id}", **form([
        ("csrf_token", csrf_token(app_page.text))]))
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        assert await dispatcher.run_once() == 0
        pending = await browser.get(changed.headers["location"])
        assert "Applied to 0 of 1 apps; still telling Shop." in pending.text
        await receiver.start()
        clock.advance(1)
        assert await dispatcher.run_once() == 1
        clock.advance(3600)
        assert await dispatcher.run_once() == 0
    finally:
        await dispatcher.close()
        await receiver.stop()
    assert len(receiver.bodies) == 1


async def test_disconnecting_an_app(new_browser, ctx: Context, setup: None) -> None:  # type: ignore[no-untyped-def]
    logout_receiver, event_receiver = Receiver(), Receiver(status=202)
    await logout_receiver.start()
    await event_receiver.start()
    browser = new_browser()
    shop = await make_app(ctx, name="Shop", grant_types=GRANTS, scopes=SCOPES,
                          backchannel_logout_uri=logout_receiver.url,
                          event_uri=event_receiver.url)
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    tokens = await tokens_with(browser, shop, [], [], scope="openid offline_access")
    await account_login(browser)
    app_page = await browser.get(f"/account/apps/{shop.client_id}")
    gone = await browser.post(f"/account/apps/{shop.client_id}/disconnect",
                              data={"csrf_token": csrf_token(app_page.text)})
    assert gone.status_code == 303
    assert (await introspect(browser, api, tokens["access_token"])) == {"active": False}
    assert (await refresh(browser, shop, tokens["refresh_token"])).json()["error"] == (
        "invalid_grant")
    assert gone.headers["location"].startswith("/account/apps?change=")
    apps = await browser.get("/account/apps")
    assert apps.status_code == 200 and 'data-apps="0"' in apps.text
    assert f'data-client="{shop.client_id}"' not in apps.text
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        assert await dispatcher.run_once() == 3  # logout token, session-revoked, claims change
    finally:
        await dispatcher.close()
        await logout_receiver.stop()
        await event_receiver.stop()
    assert len(logout_receiver.received) == 1
    kinds = [set(claims_of(body.decode())["events"]) for _, body in event_receiver.bodies]
    assert {SESSION_REVOKED} in kinds and {CLAIMS_CHANGE} in kinds
    # The next authorization asks for consent again.
    again = await browser.get("/authorize", params=Flow(shop).params(scope="openid",
                                                                      prompt="none"))
    assert query_of(again.headers["location"])["error"] == "consent_required"


async def test_account_center_requires_sign_in_and_csrf(new_browser, ctx: Context,
                                                        setup: None) -> None:  # type: ignore[no-untyped-def]
    browser = new_browser()
    response = await browser.get("/account")
    assert response.status_code == 303 and response.headers["location"] == "/account/login"
    page = await browser.get("/account/login")
    wrong = await browser.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "alice@example.com", "password": "nope"})
    assert "not correct" in wrong.text
    assert "idp_session" not in wrong.headers.get("set-cookie", "")
    forged = await browser.post("/account/login", data={
        "email": "alice@example.com", "password": PASSWORD})
    assert forged.status_code == 403
    await account_login(browser)
    # Profile edit needs the form's token too.
    assert (await browser.post("/account/profile", data={"name": "Mallory"})).status_code == 403
    profile = await browser.get("/account/profile")
    saved = await browser.post("/account/profile", data={
        "csrf_token": re.findall(r'name="csrf_token" value="([^"]+)"', profile.text)[0],
        "name": "Alice Liddell", "nickname": ""})
    assert saved.status_code == 303
    assert 'value="Alice Liddell"' in (await browser.get("/account/profile")).text


async def test_history_and_receipts(new_browser, ctx: Context, setup: None) -> None:  # type: ignore[no-untyped-def]
    browser = new_browser()
    shop = await shop_app(ctx)
    await tokens_with(browser, shop, ["phone"], ["marketing_email", "partner_sharing"])
    await account_login(browser)
    privacy = await browser.get("/account/privacy")
    entry_id = re.search(r'/account/receipts/([\w-]+)', privacy.text).group(1)
    receipt = await browser.get(f"/account/receipts/{entry_id}")
    assert receipt.status_code == 200
    body = receipt.json()
    assert body["version"] == "KI-CR-v1.1.0"
    assert body["consentReceiptID"] == entry_id
    assert body["services"][0]["service"] == "Shop"
    given = {p["purposeId"]: p["consentGiven"] for p in body["services"][0]["purposes"]}
    assert given == {"order_updates": True, "marketing_email": True, "partner_sharing": True}
    sharing = next(p for p in body["services"][0]["purposes"]
                   if p["purposeId"] == "partner_sharing")
    assert sharing["thirdPartyDisclosure"] is True
    assert body["event"]["type"] == "given"
    # Another customer cannot read it.
    await make_user(ctx, email="bob@example.com")
    other = new_browser()
    page = await other.get("/account/login")
    await other.post("/account/login", data={
        "csrf_token": csrf_token(page.text), "email": "bob@example.com", "password": PASSWORD})
    assert (await other.get(f"/account/receipts/{entry_id}")).status_code == 400


async def test_ledger_verifies_detects_tampering_and_survives_erasure(
        client: httpx.AsyncClient, ctx: Context, setup: None, database_url: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shop = await shop_app(ctx)
    await tokens_with(client, shop, ["phone"], ["marketing_email"])
    await tokens_with(client, shop, [], [], prompt="consent", scope="openid phone")
    count, problems = await ledger.verify(ctx)
    assert count == 2 and problems == []
    for name, value in {"IDP_DATABASE_URL": database_url, "IDP_ISSUER": ISSUER,
                        "IDP_KEY_ENCRYPTION_SECRET": ctx.settings.resolved_key_secret()}.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(idp_cli, ["ledger", "verify"]) == 0
    assert "2 entries checked, 0 problem(s)" in capsys.readouterr().out

    # Append-only in the database: an ordinary update is refused.
    with pytest.raises(Exception, match="append-only"):
        async with ctx.db.transaction() as session:
            await session.execute(text("UPDATE consent_ledger SET action = 'grant'"))
    # Erasing a payload keeps the chain valid.
    async with ctx.db.transaction() as session:
        await session.execute(text("UPDATE consent_ledger SET payload = NULL WHERE seq = 1"))
    assert (await ledger.verify(ctx))[1] == []

    # A superuser who bypasses the triggers and alters a row is caught, by name.
    async with ctx.db.transaction() as session:
        await _without_triggers(session, ctx, "UPDATE consent_ledger SET action = 'withdraw' "
                                "WHERE seq = 2")
        altered = (await session.execute(
            text("SELECT entry_id FROM consent_ledger WHERE seq = 2"))).scalar_one()
    assert await asyncio.to_thread(idp_cli, ["ledger", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"entry 2 ({altered}): entry was altered" in out
    # A deleted row is reported as missing.
    await tokens_with(client, shop, [], [], prompt="consent", scope="openid")
    async with ctx.db.transaction() as session:
        await _without_triggers(session, ctx, "DELETE FROM consent_ledger WHERE seq = 2")
    problems = (await ledger.verify(ctx))[1]
    assert any(p.reason == "entries 2..2 are missing" for p in problems)
    assert any(p.seq == 3 and p.reason == "does not link to the previous entry"
               for p in problems)


async def _without_triggers(session, ctx: Context, statement: str) -> None:  # type: ignore[no-untyped-def]
    if ctx.db.dialect == "postgresql":
        await session.execute(text("ALTER TABLE consent_ledger DISABLE TRIGGER USER"))
        await session.execute(text(statement))
        await session.execute(text("ALTER TABLE consent_ledger ENABLE TRIGGER USER"))
        return
    triggers = list(await session.execute(text(
        "SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name='consent_ledger'")))
    for name, _ in triggers:
        await session.execute(text(f'DROP TRIGGER "{name}"'))
    await session.execute(text(statement))
    for _, sql in triggers:
        await session.execute(text(sql))


async def test_grant_api(client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    shop = await shop_app(ctx)
    other = await shop_app(ctx, "Other", "https://app.example/o")
    tokens = await tokens_with(client, shop, ["phone"], ["marketing_email"])
    other_tokens = await tokens_with(client, other, [], [])
    grant_id = claims_of(tokens["access_token"])["consent"]["grant_id"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    read = await client.get(f"/grants/{grant_id}", headers=bearer)
    assert read.status_code == 200
    assert read.headers["cache-control"] == "no-store"
    body = read.json()
    assert body["grant_id"] == grant_id and body["client_id"] == shop.client_id
    assert body["status"] == "active"
    assert body["consent"]["purposes"] == [{"id": "order_updates", "version": 1},
                                           {"id": "marketing_email", "version": 1}]
    # Another grant's token, no token, a forged token.
    foreign = {"Authorization": f"Bearer {other_tokens['access_token']}"}
    assert (await client.get(f"/grants/{grant_id}", headers=foreign)).status_code == 403
    assert (await client.get(f"/grants/{grant_id}")).status_code == 401
    assert (await client.get(f"/grants/{grant_id}",
                             headers={"Authorization": "Bearer x.y.z"})).status_code == 401
    deleted = await client.delete(f"/grants/{grant_id}", headers=bearer)
    assert deleted.status_code == 204
    after = await client.get(f"/grants/{grant_id}", headers=bearer)
    assert after.status_code == 401
    assert 'error="invalid_token"' in after.headers["www-authenticate"]
    assert (await refresh(client, shop, tokens["refresh_token"])).json()["error"] == (
        "invalid_grant")
    # The other app's grant is untouched.
    other_grant = claims_of(other_tokens["access_token"])["consent"]["grant_id"]
    assert (await client.get(f"/grants/{other_grant}", headers=foreign)).status_code == 200


async def test_purposes_cli(ctx: Context, database_url: str, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"IDP_DATABASE_URL": database_url, "IDP_ISSUER": ISSUER,
                        "IDP_KEY_ENCRYPTION_SECRET": ctx.settings.resolved_key_secret()}.items():
        monkeypatch.setenv(name, value)
    app = await make_app(ctx)
    run = lambda *args: asyncio.to_thread(idp_cli, list(args))  # noqa: E731
    assert await run("purposes", "create", "--id", "newsletter", "--title", "Newsletter",
                     "--description", "A weekly email.", "--category", "identity") == 0
    assert json.loads(capsys.readouterr().out) == {"id": "newsletter", "version": 1}
    assert await run("purposes", "create", "--id", "Bad Id", "--title", "x",
                     "--description", "y", "--category", "identity") == 2
    assert await run("purposes", "update", "--id", "newsletter", "--description",
                     "A daily email.") == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["version"] == 2
    assert await run("purposes", "assign", "--client", app.client_id,
                     "--optional", "newsletter") == 0
    assert await run("purposes", "assign", "--client", app.client_id,
                     "--optional", "missing") == 2
    capsys.readouterr()
    assert await run("purposes", "list") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["id"] == "newsletter" and listed[0]["version"] == 2


async def test_consent_from_two_tabs_at_once_gives_one_grant(
        client: httpx.AsyncClient, ctx: Context, setup: None) -> None:
    app = await shop_app(ctx)
    first = await consent_page(client, Flow(app))
    second = await consent_page(client, Flow(app))
    codes = await asyncio.gather(answer(client, first, ["phone"], ["marketing_email"]),
                                 answer(client, second, [], []))
    assert all(codes)
    async with ctx.db.transaction() as session:
        count = (await session.execute(text("SELECT count(*) FROM grants"))).scalar_one()
        entries = (await session.execute(text("SELECT count(*) FROM consent_ledger"))).scalar_one()
    assert count == 1
    assert entries == 2
    assert (await ledger.verify(ctx))[1] == []


async def test_one_choice_applies_to_every_app_that_asks(
        new_browser, ctx: Context, setup: None) -> None:  # type: ignore[no-untyped-def]
    receivers = [Receiver(status=202) for _ in range(3)]
    for receiver in receivers:
        await receiver.start()
    browser = new_browser()
    api = await make_app(ctx, name="API", grant_types=["client_credentials"],
                         scopes=["orders:read"])
    apps = [await shop_app(ctx, f"App {i}", f"https://app.example/{i}", receivers[i].url)
            for i in range(3)]
    tokens = [await tokens_with(browser, app, ["phone"], ["marketing_email"]) for app in apps]
    await account_login(browser)
    privacy = await browser.get("/account/privacy")
    assert "allowed in 3 of 3 apps" in privacy.text
    token = re.search(r'action="/account/purposes/marketing_email" class="actions">\s*'
                      r'<input type="hidden" name="csrf_token" value="([^"]+)"',
                      privacy.text).group(1)
    changed = await browser.post("/account/purposes/marketing_email",
                                 data={"csrf_token": token, "decision": "stop"})
    assert changed.status_code == 303
    for body in tokens:
        assert (await introspect(browser, api, body["access_token"])) == {"active": False}
    pending = await browser.get(changed.headers["location"])
    assert "Applied to 0 of 3 apps; still telling App 0, App 1, App 2." in pending.text
    dispatcher = Dispatcher(ctx, timeout=2, allow_private=True)
    try:
        assert await dispatcher.run_once() == 3
    finally:
        await dispatcher.close()
        for receiver in receivers:
            await receiver.stop()
    done = await browser.get(changed.headers["location"])
    assert "Applied to 3 of 3 apps." in done.text
    assert "allowed in 0 of 3 apps" in done.text
    for receiver in receivers:
        event = claims_of(receiver.bodies[0][1].decode())
        assert event["events"][CLAIMS_CHANGE]["claims"]["consent"]["purposes"] == [
            {"id": "order_updates", "version": 1}]
    # Three ledger entries, one per app, each with its own receipt; the chain holds.
    count, problems = await ledger.verify(ctx)
    assert count == 6 and problems == []
    # Nothing changes when the choice is already so: no entry, no event.
    again = await browser.post("/account/purposes/marketing_email",
                               data={"csrf_token": token, "decision": "stop"})
    assert "Your change is saved" in (await browser.get(again.headers["location"])).text
    assert (await ledger.verify(ctx))[0] == 6
    bad = await browser.post("/account/purposes/marketing_email",
                             data={"csrf_token": token, "decision": "maybe"})
    assert bad.status_code == 400
