"""The profile schema set by the operator (issue 16 item 1) through the admin API and `idp
profile`: definitions checked strictly, standard claims described like custom attributes, and
values an operator sets kept with the operator as their source."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from idp.protocol.privacy import SET_BY_ACCOUNT
from idp.services.consent import privacy_choices, purposes
from idp.services.context import Context
from tests.helpers import make_user, run_cli
from tests.profile_helpers import bearer, connect, define_world, operator_headers, shop

BASE = "/admin/v1/profile/attributes"
TIER: dict[str, Any] = {
    "name": "member_tier", "type": "enum", "title": "Member tier",
    "description": "Your level in the club.", "data_type": "behavioral",
    "purposes": ["loyalty"], "scope": "club", "values": ["bronze", "gold"]}


@pytest.fixture
async def ops(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    await define_world(ctx)
    return await operator_headers(client, ctx)


def refused(response: httpx.Response, description: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": description}


async def test_describe_list_change_and_remove(client: httpx.AsyncClient, ctx: Context,
                                              ops: dict[str, str]) -> None:
    created = await client.post(BASE, headers=ops, json=TIER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: v for k, v in body.items() if k not in ("created_at", "updated_at")} == {
        "name": "member_tier", "type": "enum", "title": "Member tier",
        "description": "Your level in the club.", "data_type": "behavioral",
        "sensitive": False, "purposes": ["loyalty"], "customer_editable": False,
        "scope": "club", "rules": {"values": ["bronze", "gold"]}, "standard": False,
        "described": True}
    listed = {a["name"]: a for a in (await client.get(BASE, headers=ops)).json()}
    assert listed["member_tier"] == body
    # The standard claims are there with their defaults until described.
    assert (listed["birthdate"]["type"], listed["birthdate"]["described"],
            listed["birthdate"]["standard"]) == ("date", False, True)

    changed = await client.patch(f"{BASE}/member_tier", headers=ops, json={
        "purposes": ["loyalty", "personalisation"], "scope": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["purposes"], changed.json()["scope"]) == (
        ["loyalty", "personalisation"], None)
    refused(await client.patch(f"{BASE}/member_tier", headers=ops, json={"type": "string"}),
            "The request is malformed")
    assert (await client.patch(f"{BASE}/nothing", headers=ops, json={})).status_code == 404

    user_id = await make_user(ctx)
    assert (await client.put(f"/admin/v1/users/{user_id}/profile/member_tier", headers=ops,
                             json={"value": "gold"})).status_code == 204
    removed = await client.delete(f"{BASE}/member_tier", headers=ops)
    assert removed.json() == {"values_removed": 1}
    export = (await client.get(f"/admin/v1/users/{user_id}/export", headers=ops)).json()
    assert "member_tier" not in export["account"]["profile"]
    audit = (await client.get("/admin/v1/audit-events", headers=ops)).json()
    actions = {e["action"] for e in (audit["events"] if isinstance(audit, dict) else audit)}
    assert {"profile.attribute.create", "profile.attribute.update",
            "profile.attribute.delete", "profile.value.set"} <= actions


@pytest.mark.parametrize(("changes", "description"), [
    ({"name": "sub"}, "name: sub is a protocol or account claim"),
    ({"name": "email"}, "name: email is a protocol or account claim"),
    ({"name": "Member-Tier"}, "name: lower-case letters, digits and _ (e.g. shoe_size)"),
    ({"type": "colour"}, "type: one of string, integer, number, boolean, date, enum, url, "
                         "phone, email"),
    ({"purposes": []}, "purposes: a custom attribute serves at least one purpose"),
    ({"purposes": ["nope"]}, "purposes: no purpose nope"),
    ({"data_type": "emotional"}, "data_type: one of identity, descriptive, attitudinal, "
                                 "behavioral"),
    ({"scope": "profile"}, "scope: an operator-defined scope name (e.g. loyalty), not a "
                           "standard one"),
    ({"values": None}, "values: 1 to 100 distinct values of up to 100 characters"),
    ({"values": ["a", "a"]}, "values: 1 to 100 distinct values of up to 100 characters"),
    ({"type": "string", "values": None, "pattern": "("},
     "pattern: not a valid regular expression"),
    ({"type": "integer", "values": None, "minimum": 5, "maximum": 1},
     "minimum must not exceed maximum"),
    ({"type": "integer", "values": None, "max_length": 5},
     "max_length: 1 to 2048, for text types only"),
    ({"name": "birthdate", "type": "string"},
     "type: birthdate is a standard claim of type date"),
    ({"name": "birthdate", "type": "date", "values": None, "scope": "club"},
     "scope: birthdate is released by its standard scope"),
    ({"title": " "}, "title: 1 to 100 characters; description: at most 500"),
])
async def test_definitions_are_checked(client: httpx.AsyncClient, ops: dict[str, str],
                                       changes: dict[str, Any], description: str) -> None:
    refused(await client.post(BASE, headers=ops, json={**TIER, **changes}), description)


async def test_only_writers_describe_and_each_name_once(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str]) -> None:
    assert (await client.post(BASE, headers=ops, json=TIER)).status_code == 201
    refused(await client.post(BASE, headers=ops, json=TIER),
            "attribute member_tier is described already; change it instead")
    from idp.services.accounts import admin

    reader = await admin.create_client(ctx, name="Auditor", redirect_uris=[],
                                       grant_types=["client_credentials"],
                                       scopes=["admin:read"])
    token = (await client.post("/token", data={"grant_type": "client_credentials"}, auth=(
        reader.client.client_id, str(reader.client_secret)))).json()["access_token"]
    forbidden = await client.post(BASE, headers=bearer(token), json={**TIER, "name": "x_y"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"] == "insufficient_scope"
    assert (await client.get(BASE, headers=bearer(token))).status_code == 200


async def test_a_sensitive_standard_claim_follows_the_customers_limit(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str]) -> None:
    described = await client.post(BASE, headers=ops, json={
        "name": "birthdate", "title": "Birth date", "data_type": "descriptive",
        "sensitive": True, "purposes": ["personalisation"], "customer_editable": True})
    assert described.status_code == 201, described.text
    assert (described.json()["standard"], described.json()["type"]) == (True, "date")
    user_id = await make_user(ctx, birthdate="1990-02-03", given_name="Alice")
    app = await shop(ctx)
    tokens = await connect(client, app, ["personalisation"], scope="openid profile")
    token = bearer(tokens["access_token"])
    assert (await client.get("/userinfo", headers=token)).json()["birthdate"] == "1990-02-03"
    await privacy_choices.set_choices(ctx, user_id, do_not_sell_or_share=None,
                                      limit_sensitive_use=True, set_by=SET_BY_ACCOUNT)
    info = (await client.get("/userinfo", headers=token)).json()
    assert "birthdate" not in info and info["given_name"] == "Alice"
    me = (await client.get("/profile/v1/me", headers=token)).json()["attributes"]
    assert "birthdate" not in me and "given_name" in me


async def test_an_operator_sets_a_customers_value(client: httpx.AsyncClient, ctx: Context,
                                                 ops: dict[str, str]) -> None:
    user_id = await make_user(ctx)
    path = f"/admin/v1/users/{user_id}/profile/loyalty_tier"
    refused(await client.put(path, headers=ops, json={"value": "platinum"}),
            "loyalty_tier: must be one of: bronze, silver, gold")
    refused(await client.put(f"/admin/v1/users/{user_id}/profile/nope", headers=ops,
                             json={"value": 1}), "no attribute nope")
    assert (await client.put("/admin/v1/users/nobody/profile/loyalty_tier", headers=ops,
                             json={"value": "gold"})).status_code == 404
    assert (await client.put(path, headers=ops, json={"value": "gold"})).status_code == 204
    profile = (await client.get(f"/admin/v1/users/{user_id}/export", headers=ops)).json()[
        "account"]["profile"]
    assert profile["loyalty_tier"]["value"] == "gold"
    assert profile["loyalty_tier"]["provenance"]["source"] == "operator"
    assert (await client.put(path, headers=ops, json={"value": None})).status_code == 204
    profile = (await client.get(f"/admin/v1/users/{user_id}/export", headers=ops)).json()[
        "account"]["profile"]
    assert "loyalty_tier" not in profile


async def test_the_cli(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    await purposes.create_purpose(ctx, purpose_id="fit", title="Fit", description="Sizes.",
                                  data_categories=["descriptive"])
    code, out, err = await run_cli(
        ctx, monkeypatch, capsys, "profile", "describe", "--name", "shoe_size", "--type",
        "integer", "--title", "Shoe size", "--data-type", "descriptive", "--purpose", "fit",
        "--editable", "--minimum", "30", "--maximum", "60")
    assert code == 0, err
    assert '"customer_editable": true' in out and '"minimum": 30,' in out
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "change", "--name",
                                   "shoe_size", "--no-editable")
    assert code == 0 and '"customer_editable": false' in out
    await make_user(ctx, email="alice@example.com")
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "set", "--user",
                                   "alice@example.com", "--name", "shoe_size", "--json", "99")
    assert (code, err.strip()) == (2, "idp: shoe_size: must be at most 60")
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "set", "--user",
                                   "alice@example.com", "--name", "shoe_size", "--json", "42")
    assert code == 0 and '"set": true' in out
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "describe", "--name",
                                   "iss", "--type", "string", "--title", "x", "--data-type",
                                   "identity", "--purpose", "fit")
    assert (code, err.strip()) == (2, "idp: name: iss is a protocol or account claim")
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "attributes")
    assert code == 0 and '"name": "shoe_size"' in out
    code, out, err = await run_cli(ctx, monkeypatch, capsys, "profile", "remove", "--name",
                                   "shoe_size")
    assert code == 0 and '"values_removed": 1' in out
    code, out, err = await run_cli(
        ctx, monkeypatch, capsys, "purposes", "create", "--id", "kept", "--title", "Kept",
        "--description", "Kept a while.", "--category", "behavioral", "--retention-days", "30")
    assert code == 0, err
    assert (await purposes.list_purposes(ctx))[1].retention_days == 30


TYPED = [
    {"name": "anniversary", "type": "date"}, {"name": "homepage", "type": "url"},
    {"name": "mobile", "type": "phone"}, {"name": "backup_email", "type": "email"},
    {"name": "score", "type": "number", "minimum": 0, "maximum": 10},
    {"name": "code", "type": "string", "max_length": 5, "pattern": "[A-Z]+"},
    {"name": "opted_in", "type": "boolean"},
]


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("anniversary", "2023-02-30", "must be a date (YYYY-MM-DD)"),
    ("anniversary", "3 May", "must be a date (YYYY-MM-DD)"),
    ("homepage", "javascript:alert(1)", "must be a web address starting with https:// or "
                                        "http://"),
    ("mobile", "call me", "must be a phone number (digits, optionally starting with +)"),
    ("mobile", "+1", "must be a phone number (digits, optionally starting with +)"),
    ("backup_email", "alice", "must be an email address"),
    ("score", 11, "must be at most 10"),
    ("score", -0.5, "must be at least 0"),
    ("score", True, "must be a number"),
    ("code", "ABCDEF", "must be at most 5 characters"),
    ("code", "abc", "is not in the expected format"),
    ("code", "AB\x07", "must not contain control characters"),
    ("code", " ", "must not be empty"),
    ("opted_in", "yes", "must be yes or no"),
    (None, None, None),
])
async def test_values_are_checked_against_their_type(
        client: httpx.AsyncClient, ctx: Context, ops: dict[str, str], name: str | None,
        value: Any, problem: str | None) -> None:
    for fields in TYPED:
        created = await client.post(BASE, headers=ops, json={
            **fields, "title": fields["name"].title(), "data_type": "attitudinal",
            "purposes": ["personalisation"]})
        assert created.status_code == 201, created.text
    user_id = await make_user(ctx)
    if name is None:  # every type's good value is taken, as sent
        good = {"anniversary": "2024-02-29", "homepage": "https://alice.example/",
                "mobile": "+44 20 7946 0000", "backup_email": "a@example.org",
                "score": 7.5, "code": "ABC", "opted_in": False}
        for attribute, accepted in good.items():
            response = await client.put(f"/admin/v1/users/{user_id}/profile/{attribute}",
                                        headers=ops, json={"value": accepted})
            assert response.status_code == 204, response.text
        export = (await client.get(f"/admin/v1/users/{user_id}/export", headers=ops)).json()
        assert {k: v["value"] for k, v in export["account"]["profile"].items()} == good
        return
    refused(await client.put(f"/admin/v1/users/{user_id}/profile/{name}", headers=ops,
                             json={"value": value}), f"{name}: {problem}")
