"""Aggregate consent figures for the brand (issue 16 item 8): GET /admin/v1/consent/statistics
counts, per app, purpose and version, who agrees now and who granted, declined and withdrew
per day, week or month; never a person, and no count from 1 to k-1."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from idp.services.consent import grants
from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import App, Flow, authorize, login, make_user, served
from tests.test_admin_api import admin_app, bearer, token_of
from tests.test_consent import answer, define_purposes, shop_app

URL = "/admin/v1/consent/statistics"
EMAILS = [f"customer{i}@example.com" for i in range(8)]


def next_monday(now: float) -> datetime:
    today = datetime.fromtimestamp(now, UTC).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime(monday.year, monday.month, monday.day, 10, tzinfo=UTC)


async def consent(new_browser: Any, app: App, email: str, chosen: list[str]) -> None:
    browser = new_browser()
    page = await login(browser, await authorize(browser, Flow(app)), email)
    await answer(browser, page, [], chosen)


@pytest.fixture
async def story(ctx: Context, clock: FakeClock, new_browser: Any, client: httpx.AsyncClient
                ) -> dict[str, Any]:
    """Eight customers answer the shop on a Monday: six allow offers by email, two do not,
    nobody shares with partners. Eight days later one of the six disconnects the shop."""
    await define_purposes(ctx)
    start = next_monday(clock())
    clock.value = start.timestamp()
    shop = await shop_app(ctx)
    ids = [await make_user(ctx, email) for email in EMAILS]
    for i, email in enumerate(EMAILS):
        await consent(new_browser, shop, email, ["marketing_email"] if i < 6 else [])
    clock.advance(8 * 86_400)
    await grants.withdraw(ctx, ids[0], shop.client_id)
    ops = await admin_app(ctx, ["admin:read"])
    return {"shop": shop, "ids": ids, "day": start.date(),
            "reader": bearer(await token_of(client, ops))}


def cell(rows: list[dict[str, Any]], purpose: str, **match: Any) -> dict[str, Any]:
    found = [r for r in rows if r["purpose_id"] == purpose and all(
        r[k] == v for k, v in match.items())]
    assert len(found) == 1, (purpose, match, rows)
    return found[0]


async def test_counts_per_app_purpose_version_and_day(
        client: httpx.AsyncClient, story: dict[str, Any]) -> None:
    shop, day = story["shop"].client_id, story["day"]
    response = await client.get(URL, headers=story["reader"], params={
        "bucket": "day", "since": day.isoformat(), "until": (day + timedelta(8)).isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["bucket"], body["since"], body["until"], body["min_count"]) == (
        "day", day.isoformat(), (day + timedelta(8)).isoformat(), 5)
    assert body["suppression"].startswith("Counts from 1 to 4 are shown as null")
    # Now: seven customers still connected, five of them allow offers.
    now = body["current"]
    assert {(r["client_id"], r["version"]) for r in now} == {(shop, 1)}
    assert cell(now, "order_updates") == {"client_id": shop, "purpose_id": "order_updates",
                                          "version": 1, "granted": 7, "declined": 0}
    assert cell(now, "marketing_email")["granted"] == 5
    assert cell(now, "marketing_email")["declined"] is None  # two: fewer than five
    assert cell(now, "partner_sharing") == {"client_id": shop,
                                            "purpose_id": "partner_sharing", "version": 1,
                                            "granted": 0, "declined": 7}
    # Over time: the Monday's answers, and the disconnection eight days later.
    series = body["over_time"]
    assert {r["period"] for r in series} == {day.isoformat(),
                                             (day + timedelta(8)).isoformat()}
    first = day.isoformat()
    assert cell(series, "order_updates", period=first) == {
        "period": first, "client_id": shop, "purpose_id": "order_updates", "version": 1,
        "granted": 8, "declined": 0, "withdrew": 0}
    assert cell(series, "marketing_email", period=first)["granted"] == 6
    assert cell(series, "marketing_email", period=first)["declined"] is None
    assert cell(series, "partner_sharing", period=first)["declined"] == 8
    later = (day + timedelta(8)).isoformat()
    assert cell(series, "marketing_email", period=later) == {
        "period": later, "client_id": shop, "purpose_id": "marketing_email", "version": 1,
        "granted": 0, "declined": 0, "withdrew": None}
    # Counts only: no identifier of anyone in the answer.
    for user_id in story["ids"]:
        assert user_id not in response.text
    assert "@example.com" not in response.text


async def test_buckets_widen_to_whole_periods_and_filters_narrow(
        client: httpx.AsyncClient, story: dict[str, Any]) -> None:
    day: date = story["day"]
    weekly = (await client.get(URL, headers=story["reader"], params={
        "bucket": "week", "since": (day + timedelta(2)).isoformat(),
        "until": (day + timedelta(9)).isoformat()})).json()
    # From the Monday of `since` to the Sunday after `until`.
    assert (weekly["since"], weekly["until"]) == (day.isoformat(),
                                                  (day + timedelta(13)).isoformat())
    assert {r["period"] for r in weekly["over_time"]} == {
        day.isoformat(), (day + timedelta(7)).isoformat()}
    monthly = (await client.get(URL, headers=story["reader"], params={
        "bucket": "month", "since": day.isoformat(),
        "until": (day + timedelta(8)).isoformat()})).json()
    months = {day.replace(day=1), (day + timedelta(8)).replace(day=1)}
    assert {r["period"] for r in monthly["over_time"]} == {m.isoformat() for m in months}
    if len(months) == 1:  # the Monday and eight days later fall in one month
        assert cell(monthly["over_time"], "marketing_email")["granted"] == 6
    only = (await client.get(URL, headers=story["reader"], params={
        "bucket": "day", "purpose_id": "marketing_email", "since": day.isoformat(),
        "until": (day + timedelta(8)).isoformat()})).json()
    assert {r["purpose_id"] for r in only["current"] + only["over_time"]} == {
        "marketing_email"}
    other = (await client.get(URL, headers=story["reader"], params={
        "client_id": "someone-else", "since": day.isoformat()})).json()
    assert (other["current"], other["over_time"]) == ([], [])


async def test_k_is_a_setting_and_privacy_choices_are_counted(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock,
        story: dict[str, Any]) -> None:
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:write"])))
    for user_id in story["ids"][:5]:
        await client.put(f"/admin/v1/users/{user_id}/privacy-choices", headers=ops, json={
            "do_not_sell_or_share": True, "limit_sensitive_use": user_id == story["ids"][0]})
    body = (await client.get(URL, headers=story["reader"])).json()
    assert body["privacy_choices"] == {"do_not_sell_or_share": 5, "limit_sensitive_use": None}
    async with served(ctx.settings, clock, consent_statistics_min_count=2) as (http, _):
        low = (await http.get(URL, headers=story["reader"])).json()
    assert low["min_count"] == 2
    assert cell(low["current"], "marketing_email")["declined"] == 2
    assert low["privacy_choices"]["limit_sensitive_use"] is None  # one is still below 2


@pytest.mark.parametrize(("params", "description"), [
    ({"bucket": "year"}, "The request is malformed"),
    ({"since": "yesterday"}, "The request is malformed"),
    ({"since": "2026-05-02", "until": "2026-05-01", "bucket": "day"},
     "since must not be after until"),
    ({"since": "2000-01-01", "until": "2026-01-01", "bucket": "day"},
     "at most 400 periods at a time"),
    ({"client_id": "x" * 65}, "The request is malformed"),
])
async def test_bad_questions_are_invalid_request(
        client: httpx.AsyncClient, ctx: Context, params: dict[str, str],
        description: str) -> None:
    reader = bearer(await token_of(client, await admin_app(ctx, ["admin:read"])))
    response = await client.get(URL, headers=reader, params=params)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": description}


async def test_only_operators_see_it(client: httpx.AsyncClient, ctx: Context) -> None:
    assert (await client.get(URL)).status_code == 401
    api = await admin_app(ctx, ["orders:read"])
    response = await client.get(URL, headers=bearer(await token_of(client, api)))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
