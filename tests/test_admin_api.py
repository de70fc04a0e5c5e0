"""The admin API's first part: clients and the audit log, through HTTP, with our own
client_credentials tokens scoped admin:read / admin:write (issue 14 item 1)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import jwt as pyjwt
import pytest

from idp.services.accounts import admin
from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import (
    App,
    Flow,
    authorize,
    get_code,
    login,
    make_app,
    make_user,
    redeem,
    run_cli,
)

BASE = "/admin/v1"
NEW_APP = {"name": "Web shop", "redirect_uris": ["https://shop.example.com/callback"],
           "grant_types": ["authorization_code", "refresh_token"],
           "scopes": ["openid", "profile", "email"]}


async def admin_app(ctx: Context, scopes: list[str]) -> App:
    new = await admin.create_client(ctx, name="Ops", redirect_uris=[],
                                    grant_types=["client_credentials"], scopes=scopes)
    assert new.client_secret
    return App(new.client.client_id, new.client_secret, "")


async def token_of(client: httpx.AsyncClient, app: App, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = await client.post("/token", data=data, headers=app.basic())
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def ops(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    """Headers carrying an admin:read + admin:write token."""
    app = await admin_app(ctx, ["admin:read", "admin:write"])
    return bearer(await token_of(client, app))


def assert_bearer_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["www-authenticate"].startswith(f'Bearer realm="idp", error="{error}"')
    assert response.headers["cache-control"] == "no-store"


async def test_without_a_token_nothing_is_shown(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic b3BzOnNlY3JldA=="},
                    bearer("not-a-jwt"), bearer("a.b.c")):
        assert_bearer_error(await client.get(f"{BASE}/clients", headers=headers), 401,
                            "invalid_token")


async def test_expired_revoked_and_customer_tokens_are_refused(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    app = await admin_app(ctx, ["admin:read", "admin:write"])
    revoked = await token_of(client, app)
    await client.post("/revoke", data={"token": revoked}, headers=app.basic())
    assert_bearer_error(await client.get(f"{BASE}/clients", headers=bearer(revoked)), 401,
                        "invalid_token")
    # A customer's access token is no operator's, whatever its scope.
    await make_user(ctx)
    shop = await make_app(ctx)
    flow = Flow(shop)
    customer = (await redeem(client, flow, await get_code(client, flow))).json()
    assert_bearer_error(await client.get(f"{BASE}/clients",
                                         headers=bearer(customer["access_token"])),
                        401, "invalid_token")
    expiring = await token_of(client, app)
    assert (await client.get(f"{BASE}/clients", headers=bearer(expiring))).status_code == 200
    clock.advance(ctx.settings.access_token_ttl)
    assert_bearer_error(await client.get(f"{BASE}/clients", headers=bearer(expiring)), 401,
                        "invalid_token")


async def test_reading_needs_admin_read_and_changing_needs_admin_write(
        client: httpx.AsyncClient, ctx: Context) -> None:
    both = await admin_app(ctx, ["admin:read", "admin:write", "orders:read"])
    reader = bearer(await token_of(client, both, "admin:read"))
    writer = bearer(await token_of(client, both, "admin:write"))
    other = bearer(await token_of(client, both, "orders:read"))
    assert (await client.get(f"{BASE}/clients", headers=reader)).status_code == 200
    assert (await client.get(f"{BASE}/clients", headers=writer)).status_code == 200
    assert_bearer_error(await client.get(f"{BASE}/clients", headers=other), 403,
                        "insufficient_scope")
    refused = await client.post(f"{BASE}/clients", json=NEW_APP, headers=reader)
    assert_bearer_error(refused, 403, "insufficient_scope")
    names = [c["name"] for c in (await client.get(f"{BASE}/clients", headers=reader)).json()]
    assert "Web shop" not in names
    assert (await client.post(f"{BASE}/clients", json=NEW_APP, headers=writer)
            ).status_code == 201


async def test_a_client_from_creation_to_deletion(client: httpx.AsyncClient, ctx: Context,
                                                  ops: dict[str, str]) -> None:
    api = {**NEW_APP, "name": "Orders API", "grant_types": ["client_credentials"],
           "redirect_uris": [], "scopes": ["orders:read"]}
    created = await client.post(f"{BASE}/clients", json=api, headers=ops)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    client_id, secret = body["client_id"], body["client_secret"]
    assert body["client_type"] == "confidential" and body["scopes"] == ["orders:read"]
    app = App(client_id, secret, "")
    own_token = await token_of(client, app)

    read = await client.get(f"{BASE}/clients/{client_id}", headers=ops)
    assert read.status_code == 200
    assert "client_secret" not in read.json() and "secret_hash" not in read.text
    listed = (await client.get(f"{BASE}/clients", headers=ops)).json()
    assert client_id in [c["client_id"] for c in listed]

    changed = await client.patch(f"{BASE}/clients/{client_id}", headers=ops,
                                 json={"name": "Orders API v2", "scopes": ["orders:read",
                                                                           "orders:write"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Orders API v2"
    assert (await token_of(client, app, "orders:write"))

    rotated = await client.post(f"{BASE}/clients/{client_id}/secret", headers=ops)
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    old = await client.post("/token", data={"grant_type": "client_credentials"},
                            headers=app.basic())
    assert old.status_code == 401 and old.json()["error"] == "invalid_client"
    assert await token_of(client, App(client_id, new_secret, ""))

    deleted = await client.delete(f"{BASE}/clients/{client_id}", headers=ops)
    assert deleted.status_code == 204
    gone = await client.get(f"{BASE}/clients/{client_id}", headers=ops)
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert (await client.delete(f"{BASE}/clients/{client_id}", headers=ops)).status_code == 404
    # Its tokens went with it.
    introspected = await client.post("/introspect", data={"token": own_token},
                                     headers=(await admin_app(ctx, ["x:y"])).basic())
    assert introspected.json() == {"active": False}


@pytest.mark.parametrize("bad", [
    {"redirect_uris": ["http://shop.example.com/callback"]},  # not https
    {"redirect_uris": ["https://shop.example.com/callback#frag"]},
    {"redirect_uris": []},  # authorization_code needs one
    {"scopes": ["openid", "no such scope!"]},
    {"grant_types": ["password"]},
    {"id_token_signed_response_alg": "none"},
    {"client_type": "public", "grant_types": ["client_credentials"], "redirect_uris": []},
    {"surprise": True},  # an unknown field
    {"name": "x" * 201},
])
async def test_bad_registrations_are_refused_and_nothing_is_created(
        client: httpx.AsyncClient, ops: dict[str, str], bad: dict[str, object]) -> None:
    before = (await client.get(f"{BASE}/clients", headers=ops)).json()
    response = await client.post(f"{BASE}/clients", json={**NEW_APP, **bad}, headers=ops)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert (await client.get(f"{BASE}/clients", headers=ops)).json() == before


async def test_a_bad_change_changes_nothing(client: httpx.AsyncClient, ops: dict[str, str]
                                            ) -> None:
    created = (await client.post(f"{BASE}/clients", json=NEW_APP, headers=ops)).json()
    path = f"{BASE}/clients/{created['client_id']}"
    before = (await client.get(path, headers=ops)).json()
    for bad in ({"redirect_uris": ["https://shop.example.com/cb#x"], "name": "Renamed"},
                {"client_type": "public"}, {"token_endpoint_auth_method": "none"},
                {"optional_scopes": ["openid"]}):
        response = await client.patch(path, json=bad, headers=ops)
        assert response.status_code == 400, (bad, response.text)
    assert (await client.get(path, headers=ops)).json() == before
    missing = await client.patch(f"{BASE}/clients/nope", json={"name": "x"}, headers=ops)
    assert missing.status_code == 404


async def test_every_change_is_in_the_audit_log(client: httpx.AsyncClient, ctx: Context
                                                ) -> None:
    app = await admin_app(ctx, ["admin:read", "admin:write"])
    ops = bearer(await token_of(client, app))
    created = (await client.post(f"{BASE}/clients", json=NEW_APP, headers=ops)).json()
    client_id = created["client_id"]
    await client.patch(f"{BASE}/clients/{client_id}", json={"name": "Renamed"}, headers=ops)
    await client.post(f"{BASE}/clients/{client_id}/secret", headers=ops)
    await client.delete(f"{BASE}/clients/{client_id}", headers=ops)
    response = await client.get(f"{BASE}/audit-events", params={"target_id": client_id},
                                headers=ops)
    assert response.status_code == 200
    events = response.json()
    assert [e["action"] for e in events] == [
        "client.delete", "client.rotate_secret", "client.update", "client.create"]
    assert {e["actor"] for e in events} == {app.client_id}
    update = events[2]
    assert update["before"]["name"] == "Web shop" and update["after"]["name"] == "Renamed"
    assert events[3]["before"] is None and events[3]["after"]["client_id"] == client_id
    assert events[0]["after"] is None
    assert created["client_secret"] not in response.text
    # Pages go on from the last id, without gaps or repeats.
    first = (await client.get(f"{BASE}/audit-events",
                              params={"target_id": client_id, "limit": 3}, headers=ops)).json()
    rest = (await client.get(f"{BASE}/audit-events", params={
        "target_id": client_id, "limit": 3, "after": first[-1]["id"]}, headers=ops)).json()
    assert [e["id"] for e in first + rest] == [e["id"] for e in events]


async def test_bootstrap_makes_an_admin_client(client: httpx.AsyncClient, ctx: Context,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await run_cli(ctx, monkeypatch, capsys, "admin", "bootstrap", "--json")
    assert code == 0
    made = json.loads(out)
    token = await token_of(client, App(made["client_id"], made["client_secret"], ""))
    listed = await client.get(f"{BASE}/clients", headers=bearer(token))
    assert listed.status_code == 200
    assert made["client_id"] in [c["client_id"] for c in listed.json()]
    events = (await client.get(f"{BASE}/audit-events", headers=bearer(token))).json()
    assert events[0]["action"] == "client.create" and events[0]["actor"] == "cli"


async def test_the_docs_can_obtain_a_token(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["admin"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/token"
    assert set(scheme["flows"]["clientCredentials"]["scopes"]) == {"admin:read", "admin:write"}
    operation = document["paths"]["/admin/v1/clients"]["post"]
    assert operation["summary"] and operation["description"]
    assert {"400", "401", "403"} <= set(operation["responses"])
    assert operation["requestBody"]["content"]["application/json"]["schema"]


# --- customer accounts ----------------------------------------------------------------------


async def signed_in_customer(client: httpx.AsyncClient, ctx: Context,
                             email: str = "alice@example.com") -> tuple[str, dict[str, str], App]:
    """A customer signed in to a long-session app: their id, tokens and the app."""
    await make_user(ctx, email=email)
    shop = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                          long_sessions=True)
    flow = Flow(shop)
    tokens = (await redeem(client, flow, await get_code(client, flow, email=email))).json()
    user_id = str(pyjwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"])
    return user_id, tokens, shop


async def test_finding_and_reading_accounts(client: httpx.AsyncClient, ctx: Context,
                                            ops: dict[str, str]) -> None:
    for name in ("ann", "anna", "bob", "an_x"):
        await make_user(ctx, email=f"{name}@example.com")
    found = await client.get(f"{BASE}/users", params={"email": "ANN"}, headers=ops)
    assert found.status_code == 200
    assert sorted(a["email"] for a in found.json()) == ["ann@example.com", "anna@example.com"]
    # LIKE's wildcards in the search are plain characters.
    underscored = await client.get(f"{BASE}/users", params={"email": "an_"}, headers=ops)
    assert [a["email"] for a in underscored.json()] == ["an_x@example.com"]
    first = (await client.get(f"{BASE}/users", params={"limit": 2}, headers=ops)).json()
    rest = (await client.get(f"{BASE}/users", params={"limit": 2, "after": first[-1]["id"]},
                             headers=ops)).json()
    everyone = (await client.get(f"{BASE}/users", headers=ops)).json()
    assert [a["id"] for a in first + rest] == [a["id"] for a in everyone]
    assert len(everyone) == 4 and all(a["has_password"] for a in everyone)
    one = await client.get(f"{BASE}/users/{everyone[0]['id']}", headers=ops)
    assert one.json() == everyone[0]
    assert (await client.get(f"{BASE}/users/nobody", headers=ops)).status_code == 404


async def test_disabling_an_account_ends_everything_and_enabling_lets_it_back(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str],
        new_browser) -> None:  # type: ignore[no-untyped-def]
    user_id, tokens, shop = await signed_in_customer(client, ctx)
    api = await admin_app(ctx, ["orders:read"])
    disabled = await client.post(f"{BASE}/users/{user_id}/disable", headers=ops)
    assert disabled.status_code == 200 and disabled.json()["disabled_at"] is not None
    introspected = await client.post("/introspect", data={"token": tokens["access_token"]},
                                     headers=api.basic())
    assert introspected.json() == {"active": False}
    refreshed = await client.post("/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]},
                                  headers=shop.basic())
    assert refreshed.json()["error"] == "invalid_grant"
    # The browser's session is gone, and the password no longer signs in.
    page = await authorize(client, Flow(shop))
    assert urlsplit(str(page.url)).path.endswith("/login")
    refused = await login(client, page)
    assert refused.status_code == 200 and "not correct" in refused.text

    enabled = await client.post(f"{BASE}/users/{user_id}/enable", headers=ops)
    assert enabled.json()["disabled_at"] is None
    again = new_browser()
    assert await get_code(again, Flow(shop))
    events = (await client.get(f"{BASE}/audit-events", params={"target_id": user_id},
                               headers=ops)).json()
    assert [e["action"] for e in events] == ["user.enable", "user.disable"]
    assert "alice@example.com" not in json.dumps(events)


async def test_signing_a_customer_out_everywhere(client: httpx.AsyncClient, ctx: Context,
                                                 ops: dict[str, str]) -> None:
    user_id, tokens, shop = await signed_in_customer(client, ctx)
    response = await client.post(f"{BASE}/users/{user_id}/sign-out", headers=ops)
    assert response.status_code == 200 and response.json() == {"sessions_ended": 1}
    refreshed = await client.post("/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]},
                                  headers=shop.basic())
    assert refreshed.json()["error"] == "invalid_grant"
    # No single sign-on left in this browser: the login page again.
    page = await authorize(client, Flow(shop))
    assert urlsplit(str(page.url)).path.endswith("/login")


async def test_exporting_and_deleting_an_account(client: httpx.AsyncClient, ctx: Context,
                                                 ops: dict[str, str]) -> None:
    user_id, _, _ = await signed_in_customer(client, ctx)
    reader = bearer(await token_of(client, await admin_app(ctx, ["admin:read"])))
    assert_bearer_error(await client.get(f"{BASE}/users/{user_id}/export", headers=reader),
                        403, "insufficient_scope")
    exported = await client.get(f"{BASE}/users/{user_id}/export", headers=ops)
    assert exported.status_code == 200
    assert exported.headers["cache-control"] == "no-store"
    assert "alice@example.com" in exported.text
    deleted = await client.delete(f"{BASE}/users/{user_id}", headers=ops)
    assert deleted.status_code == 200
    assert deleted.json()["apps_disconnected"] == 1
    assert (await client.get(f"{BASE}/users/{user_id}", headers=ops)).status_code == 404
    assert (await client.delete(f"{BASE}/users/{user_id}", headers=ops)).status_code == 404
    events = (await client.get(f"{BASE}/audit-events", params={"target_id": user_id},
                               headers=ops)).json()
    assert [e["action"] for e in events] == ["user.delete", "user.export"]
    assert "alice@example.com" not in json.dumps(events)


# --- grants, outbox, keys -------------------------------------------------------------------


async def test_listing_and_revoking_grants(client: httpx.AsyncClient, ctx: Context,
                                           ops: dict[str, str]) -> None:
    user_id, tokens, shop = await signed_in_customer(client, ctx)
    api = await admin_app(ctx, ["orders:read"])
    assert (await client.get(f"{BASE}/grants", headers=ops)).status_code == 400
    mine = (await client.get(f"{BASE}/grants", params={"user_id": user_id}, headers=ops)).json()
    theirs = (await client.get(f"{BASE}/grants", params={"client_id": shop.client_id},
                               headers=ops)).json()
    assert mine == theirs and len(mine) == 1
    grant = mine[0]
    assert (grant["user_id"], grant["client_id"]) == (user_id, shop.client_id)
    assert (await client.delete(f"{BASE}/grants/{grant['id']}", headers=ops)).status_code == 204
    introspected = await client.post("/introspect", data={"token": tokens["access_token"]},
                                     headers=api.basic())
    assert introspected.json() == {"active": False}
    assert (await client.get(f"{BASE}/grants", params={"user_id": user_id},
                             headers=ops)).json() == []
    revoked = (await client.get(f"{BASE}/grants", params={
        "user_id": user_id, "include_revoked": "true"}, headers=ops)).json()
    assert revoked[0]["revoked_at"] is not None
    assert (await client.delete(f"{BASE}/grants/{grant['id']}", headers=ops)).status_code == 404
    # The withdrawal is in the customer's consent history, made by an operator.
    from idp.services.consent import ledger

    async with ctx.db.transaction(read_only=True) as session:
        entries = await ledger.entries_for_subject(ctx, session, user_id)
    assert (entries[0].action, entries[0].channel) == ("withdraw", "admin")  # newest first


async def test_a_failed_delivery_is_listed_and_sent_again(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str]) -> None:
    from sqlalchemy import update

    from idp.notifications.dispatcher import MAX_ATTEMPTS, Dispatcher
    from idp.store.models import OutboxMessage

    await make_user(ctx)
    app = await make_app(ctx, backchannel_logout_uri="https://rp.example/logout")
    flow = Flow(app)
    tokens = (await redeem(client, flow, await get_code(client, flow))).json()
    await client.get("/logout", params={"id_token_hint": tokens["id_token"]})
    answers = [503] * MAX_ATTEMPTS + [200]
    dispatcher = Dispatcher(ctx, allow_private=True, transport=httpx.MockTransport(
        lambda request: httpx.Response(answers.pop(0))))
    try:
        for _ in range(MAX_ATTEMPTS):  # each retry made due at once
            async with ctx.db.transaction() as session:
                await session.execute(update(OutboxMessage).where(
                    OutboxMessage.abandoned_at.is_(None)).values(next_attempt_at=0))
            await dispatcher.run_once()
        failed = (await client.get(f"{BASE}/outbox/failed", headers=ops)).json()
        assert [(f["kind"], f["status"], f["recipient"]) for f in failed] == [
            ("backchannel_logout", "abandoned", app.client_id)]
        retried = await client.post(f"{BASE}/outbox/{failed[0]['id']}/retry", headers=ops)
        assert retried.status_code == 202
        assert await dispatcher.run_once() == 1
    finally:
        await dispatcher.close()
    assert (await client.get(f"{BASE}/outbox/failed", headers=ops)).json() == []
    again = await client.post(f"{BASE}/outbox/{failed[0]['id']}/retry", headers=ops)
    assert again.status_code == 400  # delivered: never sent twice
    assert (await client.post(f"{BASE}/outbox/nope/retry", headers=ops)).status_code == 404


async def test_listing_and_rotating_keys(client: httpx.AsyncClient, ops: dict[str, str]
                                         ) -> None:
    before = (await client.get(f"{BASE}/keys", headers=ops)).json()
    assert {(k["alg"], k["state"]) for k in before} >= {("RS256", "active"), ("ES256", "next")}
    assert "private" not in json.dumps(before) and '"d"' not in json.dumps(before)
    refused = await client.post(f"{BASE}/keys/rotate", json={"algs": ["none"]}, headers=ops)
    assert refused.status_code == 400
    rotated = await client.post(f"{BASE}/keys/rotate", json={"algs": ["ES256"]}, headers=ops)
    assert rotated.status_code == 200
    [kid] = rotated.json()["active"]
    after = {k["kid"]: k for k in (await client.get(f"{BASE}/keys", headers=ops)).json()}
    assert after[kid]["state"] == "active" and after[kid]["alg"] == "ES256"
    jwks = (await client.get("/jwks")).json()
    assert kid in {k["kid"] for k in jwks["keys"]}
    events = (await client.get(f"{BASE}/audit-events", headers=ops)).json()
    assert events[0]["action"] == "keys.rotate" and events[0]["after"] == {"active": [kid]}


# --- purposes, the consent ledger, upstream providers ---------------------------------------


async def test_purposes_and_the_clients_that_ask_for_them(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str]) -> None:
    purpose = {"id": "marketing_email", "title": "Marketing e-mail",
               "description": "Offers and news by e-mail.", "data_categories": ["identity"]}
    created = await client.post(f"{BASE}/purposes", json=purpose, headers=ops)
    assert created.status_code == 201 and created.json()["version"] == 1
    again = await client.post(f"{BASE}/purposes", json=purpose, headers=ops)
    assert again.status_code == 400  # exists
    bad = await client.post(f"{BASE}/purposes", headers=ops, json={
        **purpose, "id": "Bad Id", "data_categories": ["nonsense"]})
    assert bad.status_code == 400
    wording = await client.patch(f"{BASE}/purposes/marketing_email", headers=ops,
                                 json={"description": "Offers, news and surveys by e-mail."})
    assert wording.json()["version"] == 2
    typo = await client.patch(f"{BASE}/purposes/marketing_email", headers=ops,
                              json={"title": "Marketing e-mails", "material": False})
    assert typo.json()["version"] == 2
    assert (await client.patch(f"{BASE}/purposes/none_such", json={"title": "x"},
                               headers=ops)).status_code == 404
    listed = (await client.get(f"{BASE}/purposes", headers=ops)).json()
    assert [(p["id"], p["title"], p["version"]) for p in listed] == [
        ("marketing_email", "Marketing e-mails", 2)]

    shop = await make_app(ctx)
    assigned = await client.put(f"{BASE}/clients/{shop.client_id}/purposes", headers=ops,
                                json={"optional": ["marketing_email"]})
    assert assigned.status_code == 204
    await make_user(ctx)
    page = await authorize(client, Flow(shop))
    consent = await login(client, page)
    assert "Offers, news and surveys by e-mail." in consent.text
    unknown = await client.put(f"{BASE}/clients/{shop.client_id}/purposes", headers=ops,
                               json={"required": ["none_such"]})
    assert unknown.status_code == 400
    events = (await client.get(f"{BASE}/audit-events", headers=ops)).json()
    assert [e["action"] for e in events if e["action"].startswith(("purpose.", "client.p"))] == [
        "client.purposes", "purpose.update", "purpose.update", "purpose.create"]
    changes = [e for e in events if e["target_type"] == "purpose"]
    assert changes[-1]["before"] is None and changes[-2]["before"]["version"] == 1
    assert changes[-2]["after"]["version"] == 2


async def test_the_ledger_for_an_audit(client: httpx.AsyncClient, ctx: Context,
                                       ops: dict[str, str]) -> None:
    await signed_in_customer(client, ctx)
    verified = (await client.get(f"{BASE}/ledger/verify", headers=ops)).json()
    assert verified == {"entries": 1, "problems": []}
    chain = (await client.get(f"{BASE}/ledger", headers=ops)).json()
    assert len(chain) == 1 and chain[0]["action"] == "grant"
    assert "alice@example.com" not in json.dumps(chain)  # headers and hashes, no payloads
    from idp.services.consent.ledger import GENESIS, chain_hash

    link = chain[0]
    header = {k: link[k] for k in ("entry_id", "grant_id", "client_id", "subject_ref",
                                   "action", "channel", "gpc", "created_at")}
    assert link["prev_hash"] == GENESIS
    assert chain_hash(GENESIS, link["seq"], header, link["payload_digest"]) == link["entry_hash"]
    assert (await client.get(f"{BASE}/ledger", params={"after_seq": link["seq"]},
                             headers=ops)).json() == []
    receipt = await client.get(f"{BASE}/ledger/{link['entry_id']}/receipt", headers=ops)
    assert receipt.status_code == 200 and receipt.json()
    assert (await client.get(f"{BASE}/ledger/nope/receipt", headers=ops)).status_code == 404


async def test_upstream_providers_never_show_their_secrets(
        client: httpx.AsyncClient, ops: dict[str, str]) -> None:
    secret = "upstream-secret-value-123456"
    config = {"type": "google", "client_id": "google-client",
              "client_secret": secret,
              "discovery_url": "https://google.fake/.well-known/openid-configuration"}
    saved = await client.put(f"{BASE}/upstreams/google", json=config, headers=ops)
    assert saved.status_code == 200, saved.text
    assert saved.json()["alias"] == "google" and saved.json()["name"] == "Google"
    listed = await client.get(f"{BASE}/upstreams", headers=ops)
    assert [u["alias"] for u in listed.json()] == ["google"]
    refused = await client.put(f"{BASE}/upstreams/bad", headers=ops,
                               json={**config, "discovery_url": "http://plain"})
    assert refused.status_code == 400
    events = await client.get(f"{BASE}/audit-events", headers=ops)
    assert events.json()[0]["action"] == "upstream.save"
    for response in (saved, listed, refused, events):
        assert secret not in response.text


# Answers that are documents defined elsewhere (a consent receipt, a GDPR export) or empty.
DOCUMENTS = {("get", "/admin/v1/ledger/{entry_id}/receipt"),
             ("get", "/admin/v1/users/{user_id}/export")}


async def test_every_admin_operation_is_documented_for_the_console(
        client: httpx.AsyncClient) -> None:
    """Issue 14: /docs is a usable console only if every operation says what it does, what it
    takes and answers, with examples, and how it fails."""
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def resolved(schema: dict[str, object]) -> dict[str, object]:
        ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")  # type: ignore[union-attr]
        return schemas[str(ref).rsplit("/", 1)[-1]] if ref else schema

    operations = [(method, path, op) for path, ops in document["paths"].items()
                  if path.startswith("/admin/") for method, op in ops.items()]
    assert len(operations) >= 29
    for method, path, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("description"), where
        assert op.get("security") == [{"admin": []}], where
        assert {"401", "403"} <= set(op["responses"]), where
        assert "Problem" in json.dumps(op["responses"]["401"]), where
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            body = resolved(body.get("anyOf", [body])[0])
            assert "examples" in body or body.get("additionalProperties"), where
        success = next(v for k, v in op["responses"].items() if k.startswith("2"))
        content = success.get("content", {}).get("application/json")
        if content is None or (method, path) in DOCUMENTS:
            continue
        assert "examples" in resolved(content["schema"]), where
