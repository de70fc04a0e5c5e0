"""Progressive profiling (issue 16 item 3) through two apps over HTTP: the first app's consent
page asks for what the profile lacks, checks it and keeps it with the customer as its source;
the second app that needs it for a purpose the customer grants it gets it without the
customer being asked again."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx
import pytest

from idp.services.context import Context
from tests.helpers import App, Flow, make_user, query_of
from tests.profile_helpers import (
    bearer,
    connect,
    consent_page,
    define_world,
    post_consent,
    shop,
    values_of,
)

ME = "/profile/v1/me"
WANTS = {"userinfo": {"shoe_size": {"essential": True}, "favourite_colour": None,
                      "loyalty_tier": None}}
SCOPE = "openid fit loyalty"


@pytest.fixture
async def world(ctx: Context) -> None:
    await define_world(ctx)
    await make_user(ctx, given_name="Alice")


def asked_fields(html: str) -> list[str]:
    return re.findall(r'data-profile-field="([^"]+)"', html)


def path_of(response: httpx.Response) -> str:
    return urlsplit(str(response.url)).path


async def test_two_apps_one_question(client: httpx.AsyncClient, ctx: Context,
                                     world: None) -> None:
    first = await shop(ctx, "Shop", "https://app.example/shop")
    second = await shop(ctx, "Boutique", "https://app.example/boutique")

    page = await consent_page(client, Flow(first), SCOPE, claims=json.dumps(WANTS))
    assert path_of(page).endswith("/consent")
    # Editable and lacking: asked. loyalty_tier is not the customer's to type.
    assert asked_fields(page.text) == ["shoe_size", "favourite_colour"]
    assert '<label for="profile-shoe_size">Shoe size</label>' in page.text
    assert re.search(r'<input id="profile-shoe_size" name="profile.shoe_size" type="number" '
                     r'value="" min="30" max="60" aria-describedby="profile-shoe_size-help">',
                     page.text), page.text
    assert '<p class="muted" id="profile-shoe_size-help">EU sizes</p>' in page.text
    assert '<select id="profile-favourite_colour" name="profile.favourite_colour">' in page.text

    # A value that breaks its rule: the page again, nothing recorded.
    refused = await post_consent(client, page, ["personalisation"],
                                 {"shoe_size": "99", "favourite_colour": "blue"})
    assert refused.status_code == 400
    assert '<p class="error" id="profile-shoe_size-error">Shoe size must be at most 60</p>' \
        in refused.text
    assert re.search(r'<input id="profile-shoe_size" name="profile.shoe_size" type="number" '
                     r'value="99" min="30" max="60" aria-describedby="profile-shoe_size-help '
                     r'profile-shoe_size-error" aria-invalid="true">', refused.text)
    assert 'role="alert" id="profile-fields-problems"' in refused.text
    assert '<a href="#profile-shoe_size">Shoe size must be at most 60</a>' in refused.text
    silent = await client.get("/authorize", params=Flow(first).params(
        scope=SCOPE, prompt="none"))
    assert query_of(silent.headers["location"])["error"] == "consent_required"

    answered = await post_consent(client, refused, ["personalisation"],
                                  {"shoe_size": "42", "favourite_colour": "blue"})
    assert answered.status_code == 303, answered.text
    assert "code" in query_of(answered.headers["location"])
    tokens = await connect(client, first, ["personalisation"], scope=SCOPE,
                           claims=WANTS)  # covered now: no page
    info = (await client.get("/userinfo", headers=bearer(tokens["access_token"]))).json()
    assert (info["shoe_size"], info["favourite_colour"]) == (42, "blue")
    attributes = (await client.get(ME, headers=bearer(tokens["access_token"]))).json()[
        "attributes"]
    assert attributes["shoe_size"]["source"] == "customer"

    # The second app: a consent of its own, but the customer is not asked for the values.
    page = await consent_page(client, Flow(second), SCOPE, claims=json.dumps(WANTS))
    assert path_of(page).endswith("/consent")
    assert asked_fields(page.text) == []
    second_tokens = await connect(client, second, ["personalisation"], scope=SCOPE,
                                  claims=WANTS)
    info = (await client.get("/userinfo", headers=bearer(second_tokens["access_token"]))
            ).json()
    assert (info["shoe_size"], info["favourite_colour"]) == (42, "blue")
    # Asking again for what is there: no page at all.
    again = await client.get("/authorize", params=Flow(second).params(
        scope=SCOPE, claims=json.dumps(WANTS)))
    assert again.status_code == 303 and "code" in query_of(again.headers["location"])


async def test_only_what_can_reach_the_app_is_asked(client: httpx.AsyncClient, ctx: Context,
                                                    world: None) -> None:
    # An app without the personalisation purpose could never receive these: not asked.
    loyalty_app = await shop(ctx, "Rewards", "https://app.example/r", required=(),
                             optional=("loyalty",))
    page = await consent_page(client, Flow(loyalty_app), SCOPE, claims=json.dumps(WANTS))
    assert path_of(page).endswith("/consent")
    assert asked_fields(page.text) == []


async def test_a_value_for_a_declined_purpose_is_not_kept(
        client: httpx.AsyncClient, ctx: Context, world: None) -> None:
    app = await shop(ctx)
    tokens = await connect(client, app, [], scope=SCOPE, claims=WANTS,
                           profile={"shoe_size": "42", "favourite_colour": ""})
    assert "shoe_size" not in values_of(
        await client.get(ME, headers=bearer(tokens["access_token"])))
    # Still lacking, so the app's next request with the claim asks again.
    page = await consent_page(client, Flow(app), SCOPE, claims=json.dumps(WANTS))
    assert asked_fields(page.text) == ["shoe_size", "favourite_colour"]


async def test_a_connected_app_asks_for_what_is_missing_unless_prompt_none(
        client: httpx.AsyncClient, ctx: Context, world: None) -> None:
    app: App = await shop(ctx)
    await connect(client, app, ["personalisation"], scope=SCOPE)
    # Consent covers the request, but the profile lacks what the app asks for now.
    page = await consent_page(client, Flow(app), SCOPE, claims=json.dumps(WANTS))
    assert path_of(page).endswith("/consent")
    assert asked_fields(page.text) == ["shoe_size", "favourite_colour"]
    # prompt=none never shows the page: the app goes without.
    silent = await client.get("/authorize", params=Flow(app).params(
        scope=SCOPE, claims=json.dumps(WANTS), prompt="none"))
    assert silent.status_code == 303 and "code" in query_of(silent.headers["location"])
