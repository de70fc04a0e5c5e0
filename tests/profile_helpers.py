"""The world the profile tests (tests/test_profile_*.py) share: purposes, a profile schema,
apps that ask for those purposes, and a browser giving consent through the pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from idp.services.consent import purposes
from idp.services.context import Context
from idp.services.profile import schema
from tests.helpers import (
    App,
    Flow,
    authorize,
    csrf_token,
    follow_to_page,
    login,
    make_app,
    query_of,
    redeem,
)

SCOPES = ["openid", "profile", "email", "phone", "offline_access", "loyalty", "fit"]
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "loyalty_tier": {"type": "enum", "title": "Loyalty tier", "data_type": "behavioral",
                     "purposes": ["loyalty"], "scope": "loyalty",
                     "values": ["bronze", "silver", "gold"]},
    "shoe_size": {"type": "integer", "title": "Shoe size", "data_type": "descriptive",
                  "description": "EU sizes", "purposes": ["personalisation"],
                  "customer_editable": True, "scope": "fit", "minimum": 30, "maximum": 60},
    "favourite_colour": {"type": "enum", "title": "Favourite colour",
                         "data_type": "attitudinal", "purposes": ["personalisation"],
                         "customer_editable": True, "scope": "fit",
                         "values": ["red", "green", "blue"]},
    "survey_answer": {"type": "string", "title": "Survey answer", "data_type": "attitudinal",
                      "purposes": ["personalisation"], "max_length": 40},
    "health_goal": {"type": "string", "title": "Health goal", "data_type": "attitudinal",
                    "sensitive": True, "purposes": ["personalisation", "fulfilment"],
                    "scope": "fit"},
}


async def define_world(ctx: Context) -> None:
    await purposes.create_purpose(
        ctx, purpose_id="loyalty", title="Rewards programme",
        description="We keep your loyalty tier.", data_categories=["behavioral"])
    await purposes.create_purpose(
        ctx, purpose_id="personalisation", title="Personal recommendations",
        description="We suggest what fits you.", data_categories=["attitudinal"])
    await purposes.create_purpose(
        ctx, purpose_id="fulfilment", title="Your orders",
        description="We deliver what you order.", data_categories=["identity"],
        legal_basis="contract")
    for name, fields in ATTRIBUTES.items():
        await schema.describe_attribute(ctx, name, fields, actor="test")


async def shop(ctx: Context, name: str = "Shop", redirect: str = "https://app.example/cb",
               required: tuple[str, ...] = ("fulfilment",),
               optional: tuple[str, ...] = ("loyalty", "personalisation")) -> App:
    app = await make_app(ctx, name=name, redirect_uri=redirect,
                         grant_types=["authorization_code", "refresh_token"], scopes=SCOPES)
    await purposes.set_client_purposes(ctx, app.client_id, {
        **{p: True for p in required}, **{p: False for p in optional}})
    return app


def form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """httpx takes repeated fields only as an encoded body."""
    return {"content": urlencode(pairs),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


async def consent_page(browser: httpx.AsyncClient, flow: Flow, scope: str,
                       **extra: str) -> httpx.Response:
    page = await authorize(browser, flow, scope=scope, **extra)
    if urlsplit(str(page.url)).path.endswith("/login"):
        page = await login(browser, page)
    return page


async def post_consent(browser: httpx.AsyncClient, page: httpx.Response, chosen: list[str],
                       profile: dict[str, str] | None = None) -> httpx.Response:
    assert urlsplit(str(page.url)).path.endswith("/consent"), page.text
    pairs = [("csrf_token", csrf_token(page.text)), ("decision", "allow")]
    pairs += [("purpose", p) for p in chosen]
    pairs += [(f"profile.{name}", value) for name, value in (profile or {}).items()]
    response = await browser.post(urlsplit(str(page.url)).path, **form(pairs))
    return await follow_to_page(browser, response)


async def connect(browser: httpx.AsyncClient, app: App, chosen: list[str],
                  scope: str = "openid profile email loyalty fit",
                  profile: dict[str, str] | None = None,
                  claims: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sign in (if needed), consent (if asked) choosing `chosen` optional purposes, and
    redeem the code: the token response."""
    flow = Flow(app)
    extra = {"claims": json.dumps(claims)} if claims else {}
    page = await consent_page(browser, flow, scope, **extra)
    if urlsplit(str(page.url)).path.endswith("/consent"):
        page = await post_consent(browser, page, chosen, profile)
    assert page.status_code == 303, page.text
    code = query_of(page.headers["location"])["code"]
    response = await redeem(browser, flow, code)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def values_of(response: httpx.Response) -> dict[str, Any]:
    """A Profile API answer's attribute values."""
    assert response.status_code == 200, response.text
    return {name: item["value"] for name, item in response.json()["attributes"].items()}


async def operator_headers(client: httpx.AsyncClient, ctx: Context) -> dict[str, str]:
    """An admin:read + admin:write access token of an operator's client."""
    from idp.services.accounts import admin

    new = await admin.create_client(ctx, name="Ops", redirect_uris=[],
                                    grant_types=["client_credentials"],
                                    scopes=["admin:read", "admin:write"])
    assert new.client_secret
    ops = App(new.client.client_id, new.client_secret, "")
    response = await client.post("/token", data={"grant_type": "client_credentials"},
                                 headers=ops.basic())
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])
