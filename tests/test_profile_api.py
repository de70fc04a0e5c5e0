"""The Profile API (/profile/v1/me) and custom claims, as an app sees them: reads and writes
only as far as the customer's consent goes, refusals with exact RFC 6750 errors, a withdrawal
that stops the API and UserInfo in the same instant, and the CPRA sensitive-data limit
(issue 16 item 2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from idp.protocol.privacy import SET_BY_ACCOUNT
from idp.services.consent import grants, privacy_choices, purposes
from idp.services.context import Context
from idp.services.profile import values
from tests.conftest import ISSUER, FakeClock
from tests.helpers import App, Flow, get_code, make_app, make_user, unverified_claims
from tests.profile_helpers import bearer, connect, define_world, shop, values_of
from tests.test_dpop import Holder

ME = "/profile/v1/me"
PATCH = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def alice(ctx: Context) -> str:
    await define_world(ctx)
    user_id = await make_user(ctx, given_name="Alice", name="Alice Example")
    for name, value in (("loyalty_tier", "silver"), ("shoe_size", 41),
                        ("favourite_colour", "green"), ("survey_answer", "yes"),
                        ("health_goal", "run 10k")):
        await values.set_by_operator(ctx, user_id, name, value, actor="seed")
    return user_id


@pytest.fixture
async def brand_app(ctx: Context, alice: str) -> App:
    return await shop(ctx)


def assert_refused(response: httpx.Response, status: int, error: str, description: str
                   ) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="idp", error="{error}", error_description="{description}"')


async def test_reads_show_granted_purposes_and_scopes_only(
        client: httpx.AsyncClient, brand_app: App, clock: FakeClock) -> None:
    tokens = await connect(client, brand_app, ["loyalty"], scope="openid profile loyalty")
    response = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["sub"] == unverified_claims(tokens["id_token"])["sub"]
    # loyalty granted; personalisation declined; fulfilment (required, contract) granted,
    # and health_goal serves it. Standard claims by the profile scope; no email scope.
    assert body["attributes"] == {
        "given_name": {"value": "Alice", "source": "operator", "updated_at": int(clock.value)},
        "name": {"value": "Alice Example", "source": "operator",
                 "updated_at": int(clock.value)},
        "loyalty_tier": {"value": "silver", "source": "operator",
                         "updated_at": int(clock.value)},
        "health_goal": {"value": "run 10k", "source": "operator",
                        "updated_at": int(clock.value)},
    }
    with_email = await connect(client, brand_app, ["loyalty", "personalisation"],
                               scope="openid email")
    assert values_of(await client.get(ME, headers=bearer(with_email["access_token"]))) == {
        "email": "alice@example.com", "email_verified": True, "loyalty_tier": "silver",
        "shoe_size": 41, "favourite_colour": "green", "survey_answer": "yes",
        "health_goal": "run 10k"}


async def test_requests_without_a_valid_token_are_challenged(
        client: httpx.AsyncClient, brand_app: App) -> None:
    for method in ("GET", "PATCH"):
        bare = await client.request(method, ME)
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"] == 'Bearer realm="idp"'
        for token in ("nonsense", "a.b.c"):
            assert_refused(await client.request(method, ME, headers=bearer(token)), 401,
                           "invalid_token", "The access token is invalid, expired or revoked")


async def test_writes_refused_with_the_attribute_and_the_reason(
        client: httpx.AsyncClient, brand_app: App) -> None:
    tokens = await connect(client, brand_app, ["loyalty"], scope="openid profile")
    headers = {**bearer(tokens["access_token"]), **PATCH}

    async def patch(body: Any, **kwargs: Any) -> httpx.Response:
        return await client.patch(ME, content=json.dumps(body),
                                  headers={**headers, **kwargs.pop("headers", {})})

    assert_refused(await patch({"given_name": "Mallory"}), 403, "insufficient_scope",
                   "given_name is identity data: apps may write attitudinal and behavioral "
                   "attributes only")
    assert_refused(await patch({"shoe_size": 44}), 403, "insufficient_scope",
                   "shoe_size is descriptive data: apps may write attitudinal and "
                   "behavioral attributes only")
    assert_refused(await patch({"favourite_colour": "red"}), 403, "insufficient_scope",
                   "favourite_colour: the customer's consent to this app covers none of "
                   "its purposes (personalisation)")
    assert_refused(await patch({"no_such": 1}), 400, "invalid_request",
                   "no_such: no such attribute")
    assert_refused(await patch({"loyalty_tier": "platinum"}), 400, "invalid_request",
                   "loyalty_tier: must be one of: bronze, silver, gold")
    assert_refused(await patch({"loyalty_tier": 3}), 400, "invalid_request",
                   "loyalty_tier: must be one of the choices")
    assert_refused(await patch(["loyalty_tier"]), 400, "invalid_request",
                   "The request body must be a JSON object of attributes")
    bad_json = await client.patch(ME, content=b"{loyalty", headers=headers)
    assert_refused(bad_json, 400, "invalid_request", "The request body is not valid JSON")
    assert_refused(await patch({"loyalty_tier": "gold"}, headers={"Content-Type": "text/plain"}),
                   415, "invalid_request",
                   "Send a JSON Merge Patch (application/merge-patch+json)")
    assert_refused(await patch({"loyalty_tier": "gold", "pad": "x" * 20_000}), 413,
                   "invalid_request", "The request body exceeds 16384 bytes")
    # Past the service's own cap for any body: refused before the app reads it.
    huge = await client.patch(ME, content=b"{" + b" " * 70_000 + b"}", headers=headers)
    assert huge.status_code == 413
    # All or nothing: a valid change beside a refused one is not written.
    assert_refused(await patch({"loyalty_tier": "gold", "favourite_colour": "red"}), 403,
                   "insufficient_scope", "favourite_colour: the customer's consent to this "
                   "app covers none of its purposes (personalisation)")
    assert values_of(await client.get(ME, headers=bearer(tokens["access_token"])))[
        "loyalty_tier"] == "silver"


async def test_a_write_keeps_the_app_as_its_source(
        client: httpx.AsyncClient, brand_app: App, clock: FakeClock) -> None:
    tokens = await connect(client, brand_app, ["loyalty", "personalisation"], scope="openid")
    clock.advance(60)
    response = await client.patch(ME, content=json.dumps(
        {"loyalty_tier": "gold", "favourite_colour": "blue", "survey_answer": None}),
        headers={**bearer(tokens["access_token"]), "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    attributes = response.json()["attributes"]
    now = int(clock.value)
    assert attributes["loyalty_tier"] == {"value": "gold", "source": "app", "updated_at": now}
    assert attributes["favourite_colour"] == {"value": "blue", "source": "app",
                                              "updated_at": now}
    assert "survey_answer" not in attributes  # null removed it
    # Unchanged values keep their source.
    assert attributes["shoe_size"]["source"] == "operator"
    again = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert again.json()["attributes"] == attributes


async def test_withdrawal_stops_the_api_and_userinfo_in_the_same_instant(
        client: httpx.AsyncClient, ctx: Context, brand_app: App, alice: str) -> None:
    tokens = await connect(client, brand_app, ["loyalty", "personalisation"],
                           scope="openid loyalty fit")
    token = bearer(tokens["access_token"])
    info = await client.get("/userinfo", headers=token)
    assert info.status_code == 200
    assert {k: info.json()[k] for k in ("loyalty_tier", "shoe_size", "favourite_colour",
                                        "health_goal")} == {
        "loyalty_tier": "silver", "shoe_size": 41, "favourite_colour": "green",
        "health_goal": "run 10k"}
    assert values_of(await client.get(ME, headers=token))["loyalty_tier"] == "silver"

    await grants.withdraw(ctx, alice, brand_app.client_id)
    # No clock tick: the very next requests are refused.
    refused = "The access token is invalid, expired or revoked"
    assert_refused(await client.get(ME, headers=token), 401, "invalid_token", refused)
    assert_refused(await client.get("/userinfo", headers=token), 401, "invalid_token",
                   refused)
    assert_refused(await client.patch(ME, content=b'{"loyalty_tier": "gold"}',
                                      headers={**token, **PATCH}),
                   401, "invalid_token", refused)


async def test_stopping_one_purpose_stops_its_attributes_everywhere(
        client: httpx.AsyncClient, ctx: Context, brand_app: App, alice: str) -> None:
    tokens = await connect(client, brand_app, ["loyalty", "personalisation"],
                           scope="openid loyalty fit")
    await grants.change_purpose_everywhere(ctx, alice, "personalisation", allowed=False)
    # The old token stops at once (the consent narrowed); a new one carries less.
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
    fresh = await connect(client, brand_app, [], scope="openid loyalty fit")
    info = (await client.get("/userinfo", headers=bearer(fresh["access_token"]))).json()
    assert "loyalty_tier" in info
    # health_goal still serves fulfilment, the contract the app needs.
    assert {"shoe_size", "favourite_colour"} & set(info) == set()
    assert info["health_goal"] == "run 10k"
    assert set(values_of(await client.get(ME, headers=bearer(fresh["access_token"])))) == {
        "loyalty_tier", "health_goal"}
    assert_refused(await client.patch(ME, content=b'{"favourite_colour": "red"}',
                                      headers={**bearer(fresh["access_token"]), **PATCH}),
                   403, "insufficient_scope", "favourite_colour: the customer's consent to "
                   "this app covers none of its purposes (personalisation)")


async def test_custom_claims_need_their_scope_and_a_granted_purpose(
        client: httpx.AsyncClient, brand_app: App) -> None:
    loyalty_only = await connect(client, brand_app, ["loyalty", "personalisation"],
                                 scope="openid loyalty")
    info = (await client.get("/userinfo", headers=bearer(loyalty_only["access_token"]))).json()
    assert info["loyalty_tier"] == "silver"
    assert {"shoe_size", "favourite_colour", "health_goal", "survey_answer"} & set(info) \
        == set()  # the fit scope was not granted; survey_answer has no scope at all
    # OIDC Core §5.5: the ID token carries a custom claim only when the request names it.
    assert "loyalty_tier" not in unverified_claims(loyalty_only["id_token"])
    named = await connect(
        client, brand_app, ["loyalty", "personalisation"],
        scope="openid loyalty fit offline_access",
        claims={"id_token": {"loyalty_tier": None, "shoe_size": None, "given_name": None}})
    id_token = unverified_claims(named["id_token"])
    assert id_token["loyalty_tier"] == "silver"
    assert id_token["shoe_size"] == 41
    # A standard claim asked for alone is consented alone on the page (OIDC Core §5.5).
    assert id_token["given_name"] == "Alice"
    # A refreshed ID token carries the same, under the live consent.
    refreshed = await client.post("/token", data={
        "grant_type": "refresh_token", "refresh_token": named["refresh_token"]},
        headers=brand_app.basic())
    assert refreshed.status_code == 200, refreshed.text
    again = unverified_claims(refreshed.json()["id_token"])
    assert (again["loyalty_tier"], again["shoe_size"]) == ("silver", 41)


async def test_limiting_sensitive_use_keeps_sensitive_attributes_to_contract_purposes(
        client: httpx.AsyncClient, ctx: Context, alice: str) -> None:
    # An app that asks only for personalisation (consent), and one that needs fulfilment
    # (contract): health_goal serves both.
    wellness = await shop(ctx, "Wellness", "https://app.example/w", required=(),
                          optional=("personalisation",))
    store_app = await shop(ctx, "Store", "https://app.example/s")
    wellness_tokens = await connect(client, wellness, ["personalisation"], scope="openid fit")
    store_tokens = await connect(client, store_app, [], scope="openid fit")
    for tokens in (wellness_tokens, store_tokens):
        assert values_of(await client.get(ME, headers=bearer(tokens["access_token"])))[
            "health_goal"] == "run 10k"

    await privacy_choices.set_choices(ctx, alice, do_not_sell_or_share=None,
                                      limit_sensitive_use=True, set_by=SET_BY_ACCOUNT)
    wellness_token = bearer(wellness_tokens["access_token"])
    assert "health_goal" not in values_of(await client.get(ME, headers=wellness_token))
    assert "health_goal" not in (await client.get("/userinfo", headers=wellness_token)).json()
    assert_refused(await client.patch(ME, content=b'{"health_goal": "swim"}',
                                      headers={**wellness_token, **PATCH}),
                   403, "insufficient_scope", "health_goal: the customer's consent to this "
                   "app covers none of its purposes (personalisation, fulfilment)")
    store_token = bearer(store_tokens["access_token"])
    assert values_of(await client.get(ME, headers=store_token))["health_goal"] == "run 10k"
    assert (await client.get("/userinfo", headers=store_token)).json()["health_goal"] \
        == "run 10k"


async def test_concurrent_writes_of_two_attributes_both_stand(
        client: httpx.AsyncClient, brand_app: App) -> None:
    tokens = await connect(client, brand_app, ["loyalty", "personalisation"], scope="openid")
    headers = {**bearer(tokens["access_token"]), **PATCH}
    first, second = await asyncio.gather(
        client.patch(ME, content=b'{"loyalty_tier": "gold"}', headers=headers),
        client.patch(ME, content=b'{"favourite_colour": "red"}', headers=headers))
    assert (first.status_code, second.status_code) == (200, 200)
    found = values_of(await client.get(ME, headers=bearer(tokens["access_token"])))
    assert (found["loyalty_tier"], found["favourite_colour"]) == ("gold", "red")


async def test_a_dpop_bound_token_reads_with_a_proof_of_its_key(
        client: httpx.AsyncClient, ctx: Context, alice: str, clock: FakeClock) -> None:
    holder = Holder(clock)
    mobile = await make_app(ctx, client_type="public", scopes=["openid", "loyalty"],
                            grant_types=["authorization_code"])
    await purposes.set_client_purposes(ctx, mobile.client_id, {"loyalty": True})
    flow = Flow(mobile)
    code = await get_code(client, flow, scope="openid loyalty")
    tokens = (await client.post("/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": mobile.redirect_uri,
        "code_verifier": flow.verifier, "client_id": mobile.client_id},
        headers={"DPoP": holder.proof()})).json()
    token = tokens["access_token"]
    proof = holder.proof("GET", f"{ISSUER}{ME}", access_token=token)
    read = await client.get(ME, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert values_of(read) == {"loyalty_tier": "silver"}
    # RFC 9449 §7.2: never as a bearer token; §7.1: never without a proof.
    as_bearer = await client.get(ME, headers=bearer(token))
    assert as_bearer.status_code == 401 and as_bearer.json()["error"] == "invalid_token"
    no_proof = await client.get(ME, headers={"Authorization": f"DPoP {token}"})
    assert no_proof.status_code == 401 and no_proof.json()["error"] == "invalid_dpop_proof"
    # A proof is for one method and URL: GET's does not write.
    wrong = await client.patch(ME, content=b'{"loyalty_tier": "gold"}', headers={
        **PATCH, "Authorization": f"DPoP {token}",
        "DPoP": holder.proof("GET", f"{ISSUER}{ME}", access_token=token)})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_dpop_proof"
