"""Step-up authentication (issue 12 item 7; OIDC Core §2 acr/amr, §3.1.2.1 acr_values and
max_age, §5.5.1.1 essential acr; RFC 8176 amr): an app asks for a second factor with
`acr_values` or an essential `acr` claim, or requires one for every sign-in; a signed-in
customer gives only the code; tokens say what happened; and the account center's sensitive
actions ask for the second factor when the account has one."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from idp.protocol.discovery import ACR_FEDERATED, ACR_MFA, ACR_PASSWORD
from idp.services.accounts import admin
from idp.services.context import Context
from tests.conftest import FakeClock
from tests.fakes.google import FakeGoogle
from tests.helpers import (
    PASSWORD,
    REDIRECT_URI,
    App,
    Flow,
    account_sign_in,
    authorize,
    csrf_token,
    follow_to_page,
    get_code,
    login,
    make_app,
    make_user,
    query_of,
    run_cli,
    unverified_claims,
)
from tests.test_account_linking import identities_token
from tests.test_admin_api import BASE as ADMIN
from tests.test_admin_api import NEW_APP, admin_app, bearer, token_of
from tests.test_totp import SESSION_COOKIE, code, enrol, send_code, tokens_after

UNMET = "The requested authentication context cannot be met"
NO_FACTOR = UNMET + ": the account has no second factor"
ESSENTIAL_MFA = json.dumps({"id_token": {"acr": {"essential": True, "values": [ACR_MFA]}}})


@pytest.fixture
async def shop(ctx: Context) -> Flow:
    await make_user(ctx)
    return Flow(await make_app(ctx))


def error_of(response: httpx.Response, flow: Flow) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(flow.app.redirect_uri), location
    query = query_of(location)
    assert query["state"] == flow.state
    return query


def otp_path(page: httpx.Response) -> bool:
    return urlsplit(str(page.url)).path.endswith("/otp")


async def signed_in_with_password(browser: httpx.AsyncClient, flow: Flow) -> dict[str, Any]:
    """An app's sign-in with the password alone (an account without a second factor)."""
    return await tokens_after(browser, flow, await login(browser, await authorize(browser, flow)))


# -- Discovery -------------------------------------------------------------------------------


async def test_discovery_advertises_the_mfa_context(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()
    assert metadata["acr_values_supported"] == [ACR_PASSWORD, ACR_FEDERATED, ACR_MFA]
    assert {"acr", "amr"} <= set(metadata["claims_supported"])


# -- Step-up with the code alone -------------------------------------------------------------


@pytest.mark.parametrize("how", ["acr_values", "essential"])
async def test_a_signed_in_customer_steps_up_with_the_code_alone(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow, how: str) -> None:
    # The account center's session began before two-step sign-in was on: password only.
    secret, _ = await enrol(client, clock)
    first = Flow(shop.app)
    tokens = await tokens_after(client, first, await authorize(client, first))
    plain = unverified_claims(tokens["id_token"])
    assert plain["amr"] == ["pwd"] and plain["acr"] == ACR_PASSWORD
    old_cookie = client.cookies.get(SESSION_COOKIE)
    clock.advance(40)
    flow = Flow(shop.app)
    extra = {"acr_values": ACR_MFA} if how == "acr_values" else {"claims": ESSENTIAL_MFA}
    otp_page = await authorize(client, flow, **extra)
    # No password again: straight to the code page of this authorization.
    assert otp_page.status_code == 200 and otp_path(otp_page), otp_page.text
    assert 'autocomplete="one-time-code"' in otp_page.text
    wrong = await send_code(client, otp_page, "000000" if code(secret, clock) != "000000"
                            else "111111")
    assert wrong.status_code == 200 and "That code is not right" in wrong.text
    answer = await send_code(client, otp_page, code(secret, clock))
    assert answer.status_code == 303
    tokens = await tokens_after(client, flow, answer)
    id_token = unverified_claims(tokens["id_token"])
    assert id_token["amr"] == ["pwd", "otp", "mfa"]
    assert id_token["acr"] == ACR_MFA
    assert id_token["auth_time"] == clock.value  # the step-up is an authentication
    access = unverified_claims(tokens["access_token"])
    assert access["acr"] == ACR_MFA and access["amr"] == ["pwd", "otp", "mfa"]
    # A new session id (ATO-14); the old cookie no longer signs anyone in.
    assert client.cookies.get(SESSION_COOKIE) not in (None, old_cookie)
    # The stepped-up session serves the next request silently, MFA included.
    again = Flow(shop.app)
    answer = await client.get("/authorize", params=again.params(prompt="none", **extra))
    assert "code" in query_of(answer.headers["location"])


async def test_preference_order_of_acr_values(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    """OIDC Core §3.1.2.1: acr_values in order of preference. The password first: met, no
    step-up, and the acr is the one asked for; unknown values are ignored."""
    await enrol(client, clock)
    flow = Flow(shop.app)
    tokens = await tokens_after(client, flow, await authorize(
        client, flow, acr_values=f"urn:unknown {ACR_PASSWORD} {ACR_MFA}"))
    claims = unverified_claims(tokens["id_token"])
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]
    # Only unknown values: what the session achieved.
    flow = Flow(shop.app)
    answer = await client.get("/authorize", params=flow.params(acr_values="urn:gold urn:x"))
    code_ = query_of(answer.headers["location"])["code"]
    assert code_


async def test_prompt_none_cannot_step_up(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    await enrol(client, clock)
    await tokens_after(client, shop, await authorize(client, shop))
    essential = Flow(shop.app)
    answer = await client.get("/authorize", params=essential.params(
        prompt="none", claims=ESSENTIAL_MFA))
    assert error_of(answer, essential)["error"] == "interaction_required"
    # A voluntary preference does not block: the code, with the truth in acr.
    voluntary = Flow(shop.app)
    answer = await client.get("/authorize", params=voluntary.params(
        prompt="none", acr_values=ACR_MFA))
    tokens = await tokens_after(client, voluntary, answer)
    assert unverified_claims(tokens["id_token"])["acr"] == ACR_PASSWORD


# -- max_age with step-up --------------------------------------------------------------------


async def test_max_age_elapsed_asks_for_the_password_and_the_code(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    secret, _ = await enrol(client, clock)
    clock.advance(100)
    flow = Flow(shop.app)
    page = await authorize(client, flow, acr_values=ACR_MFA, max_age="60")
    assert urlsplit(str(page.url)).path.endswith("/login"), page.text
    otp_page = await login(client, page)
    assert otp_path(otp_page)
    tokens = await tokens_after(client, flow, await send_code(client, otp_page,
                                                               code(secret, clock)))
    claims = unverified_claims(tokens["id_token"])
    assert claims["auth_time"] == clock.value
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == ACR_MFA


async def test_max_age_not_elapsed_asks_for_the_code_only(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    secret, _ = await enrol(client, clock)
    flow = Flow(shop.app)
    otp_page = await authorize(client, flow, claims=ESSENTIAL_MFA, max_age="10000")
    assert otp_path(otp_page), otp_page.text
    clock.advance(5)
    tokens = await tokens_after(client, flow, await send_code(client, otp_page,
                                                               code(secret, clock)))
    claims = unverified_claims(tokens["id_token"])
    assert claims["auth_time"] == clock.value and claims["acr"] == ACR_MFA


async def test_max_age_zero_with_an_mfa_session_asks_for_both_again(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    secret, _ = await enrol(client, clock)
    flow = Flow(shop.app)
    await tokens_after(client, flow, await send_code(
        client, await authorize(client, flow, acr_values=ACR_MFA), code(secret, clock)))
    clock.advance(30)
    again = Flow(shop.app)
    page = await authorize(client, again, claims=ESSENTIAL_MFA, max_age="0")
    assert urlsplit(str(page.url)).path.endswith("/login")
    otp_page = await login(client, page)
    assert otp_path(otp_page)
    tokens = await tokens_after(client, again, await send_code(client, otp_page,
                                                                code(secret, clock)))
    claims = unverified_claims(tokens["id_token"])
    assert claims["auth_time"] == clock.value and claims["acr"] == ACR_MFA


# -- Accounts without a second factor --------------------------------------------------------


async def test_an_essential_mfa_without_a_factor_is_access_denied(
        client: httpx.AsyncClient, shop: Flow) -> None:
    await signed_in_with_password(client, shop)
    flow = Flow(shop.app)
    answer = await client.get("/authorize", params=flow.params(claims=ESSENTIAL_MFA))
    error = error_of(answer, flow)
    assert error["error"] == "access_denied" and error["error_description"] == NO_FACTOR
    # Signing in afresh does not help either.
    fresh = Flow(shop.app)
    answer = await client.post(
        urlsplit(str((page := await authorize(client, fresh, claims=ESSENTIAL_MFA,
                                              prompt="login")).url)).path,
        data={"csrf_token": csrf_token(page.text), "email": "alice@example.com",
              "password": PASSWORD})
    error = error_of(await follow_to_page(client, answer), fresh)
    assert error["error"] == "access_denied" and error["error_description"] == NO_FACTOR


async def test_a_voluntary_mfa_without_a_factor_says_what_was_achieved(
        client: httpx.AsyncClient, shop: Flow) -> None:
    flow = Flow(shop.app)
    page = await authorize(client, flow, acr_values=ACR_MFA)
    tokens = await tokens_after(client, flow, await login(client, page))
    claims = unverified_claims(tokens["id_token"])
    assert claims["acr"] == ACR_PASSWORD and claims["amr"] == ["pwd"]


# -- Bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "description"), [
    ({"essential": True, "values": ACR_MFA},
     "claims.id_token.acr.values must be an array of strings"),
    ({"essential": True, "values": []},
     "claims.id_token.acr.values must be an array of strings"),
    ({"essential": True, "values": [ACR_MFA, 5]},
     "claims.id_token.acr.values must be an array of strings"),
    ({"essential": "yes", "values": [ACR_MFA]},
     "claims.id_token.acr.essential must be true or false"),
    ({"essential": True, "value": 1}, "claims.id_token.acr.value must be a string"),
    ({"essential": True, "value": ACR_MFA, "values": [ACR_MFA]},
     "claims.id_token.acr has both value and values"),
])
async def test_malformed_acr_claims_are_invalid_request(
        client: httpx.AsyncClient, shop: Flow, spec: dict[str, Any], description: str) -> None:
    flow = Flow(shop.app)
    answer = await client.get("/authorize", params=flow.params(
        claims=json.dumps({"id_token": {"acr": spec}})))
    error = error_of(answer, flow)
    assert error == {"error": "invalid_request", "error_description": description,
                     "state": flow.state, "iss": error["iss"]}


async def test_an_essential_acr_we_never_issue_is_refused_before_any_page(
        client: httpx.AsyncClient, shop: Flow) -> None:
    flow = Flow(shop.app)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": "urn:gold"}}})
    error = error_of(await client.get("/authorize", params=flow.params(claims=claims)), flow)
    assert error["error"] == "access_denied" and error["error_description"] == UNMET


async def test_bad_max_age_is_invalid_request(client: httpx.AsyncClient, shop: Flow) -> None:
    for value in ("-1", "1.5", "soon"):
        flow = Flow(shop.app)
        error = error_of(await client.get("/authorize", params=flow.params(
            max_age=value, acr_values=ACR_MFA)), flow)
        assert error["error_description"] == "max_age must be a non-negative integer"


# -- A client that requires a second factor --------------------------------------------------


async def test_a_client_requiring_mfa_leads_to_set_up_then_continues(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock) -> None:
    await make_user(ctx)
    flow = Flow(await make_app(ctx, name="Bank", require_mfa=True))
    page = await login(client, await authorize(client, flow))
    assert urlsplit(str(page.url)).path.endswith("/two-step-required"), page.text
    assert "Bank requires two-step sign-in" in page.text
    assert 'href="/account/totp"' in page.text
    interaction = urlsplit(str(page.url)).path.removesuffix("/two-step-required")
    # prompt=none cannot show that page.
    silent = Flow(flow.app)
    error = error_of(await client.get("/authorize", params=silent.params(prompt="none")),
                     silent)
    assert error["error"] == "interaction_required"
    # Set up in the account center (the sign-in above is recent), then continue.
    setup = await client.get("/account/totp")
    secret = re.search(r'id="setup-key">([^<]+)<', setup.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    sealed = re.search(r'name="setup" value="([^"]+)"', setup.text).group(1)  # type: ignore[union-attr]
    done = await client.post("/account/totp", data={
        "csrf_token": csrf_token(setup.text), "setup": sealed, "code": code(secret, clock)})
    assert "Two-step sign-in is on" in done.text
    clock.advance(30)
    otp_page = await follow_to_page(client, await client.get(interaction))
    assert otp_path(otp_page), otp_page.text
    tokens = await tokens_after(client, flow, await send_code(client, otp_page,
                                                               code(secret, clock)))
    claims = unverified_claims(tokens["id_token"])
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]


async def test_cancelling_the_set_up_tells_the_app_access_denied(
        client: httpx.AsyncClient, ctx: Context) -> None:
    await make_user(ctx)
    flow = Flow(await make_app(ctx, name="Bank", require_mfa=True))
    page = await login(client, await authorize(client, flow))
    cancel = re.search(r'action="(/interaction/[^"]+/cancel)">\s*<input type="hidden" '
                       r'name="csrf_token" value="([^"]+)"', page.text)
    assert cancel, page.text
    answer = await client.post(cancel.group(1), data={"csrf_token": cancel.group(2)})
    assert error_of(answer, flow)["error"] == "access_denied"


async def test_a_client_requiring_mfa_asks_an_enrolled_customer_for_the_code(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    secret, _ = await enrol(client, clock)
    bank = Flow(await make_app(ctx, name="Bank", require_mfa=True))
    otp_page = await authorize(client, bank)
    assert otp_path(otp_page)
    tokens = await tokens_after(client, bank, await send_code(client, otp_page,
                                                               code(secret, clock)))
    assert unverified_claims(tokens["id_token"])["acr"] == ACR_MFA


async def test_require_mfa_through_the_cli_and_the_admin_api(
        ctx: Context, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    status, out, err = await run_cli(
        ctx, monkeypatch, capsys, "clients", "create", "--name", "Bank", "--redirect-uri",
        "https://app.example/cb", "--require-mfa", "--json")
    assert status == 0, err
    created = json.loads(out)
    assert created["require_mfa"] is True
    status, out, err = await run_cli(ctx, monkeypatch, capsys, "clients", "update",
                                     created["client_id"], "--no-require-mfa", "--json")
    assert status == 0, err
    assert json.loads(out)["require_mfa"] is False
    assert (await admin.get_client(ctx, created["client_id"])).require_mfa is False
    updated = await admin.update_client(ctx, created["client_id"], {"require_mfa": True})
    assert updated.require_mfa is True
    assert admin.public_view(updated)["require_mfa"] is True


async def test_require_mfa_set_over_the_admin_api_governs_the_sign_in(
        client: httpx.AsyncClient, ctx: Context, new_browser: Any) -> None:
    """The admin API's `require_mfa` (an operator's HTTP client, not the CLI): on, a
    password alone leads to the two-step set-up; off, the same password signs in; a value
    that is not a boolean is refused and changes nothing."""
    await make_user(ctx)
    ops = bearer(await token_of(client, await admin_app(ctx, ["admin:read", "admin:write"])))
    created = await client.post(f"{ADMIN}/clients", headers=ops, json={
        **NEW_APP, "name": "Bank", "redirect_uris": [REDIRECT_URI], "require_mfa": True})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["require_mfa"] is True
    bank = App(body["client_id"], body["client_secret"], REDIRECT_URI)
    path = f"{ADMIN}/clients/{bank.client_id}"
    assert (await client.get(path, headers=ops)).json()["require_mfa"] is True
    browser = new_browser()
    page = await login(browser, await authorize(browser, Flow(bank)))
    assert urlsplit(str(page.url)).path.endswith("/two-step-required"), page.text

    changed = await client.patch(path, headers=ops, json={"require_mfa": False})
    assert changed.status_code == 200 and changed.json()["require_mfa"] is False
    assert await get_code(new_browser(), Flow(bank))
    refused = await client.patch(path, headers=ops, json={"require_mfa": "sometimes"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert (await client.get(path, headers=ops)).json()["require_mfa"] is False


# -- Sensitive account-center actions ask for the second factor ------------------------------


async def reauth_with_code(browser: httpx.AsyncClient, secret: str, clock: FakeClock,
                           location: str) -> str:
    """From the redirect to /account/reauth: the password, then the code; where it ends."""
    page = await browser.get(location)
    next_path = re.search(r'name="next" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    answer = await browser.post("/account/reauth", data={
        "csrf_token": csrf_token(page.text), "next": next_path.replace("&amp;", "&"),
        "password": PASSWORD})
    assert answer.status_code == 303 and answer.headers["location"] == "/account/reauth/otp"
    otp_page = await browser.get("/account/reauth/otp")
    done = await send_code(browser, otp_page, code(secret, clock))
    assert done.status_code == 303, done.text
    return str(done.headers["location"])


@pytest.mark.parametrize(("action", "path"), [
    ("email", "/account/email"),
    ("delete", "/account/delete"),
    ("remove-factor", "/account/totp/remove"),
])
async def test_pages_of_sensitive_actions_ask_for_the_code(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow, action: str,
        path: str) -> None:
    # Recent, but signed in before two-step sign-in was on: not enough.
    secret, _ = await enrol(client, clock)
    refused = await client.get(path)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/account/reauth?next=")
    clock.advance(30)
    back = await reauth_with_code(client, secret, clock, refused.headers["location"])
    assert back == path
    assert (await client.get(path)).status_code == 200


async def test_changing_the_password_asks_for_the_code_and_keeps_it(
        client: httpx.AsyncClient, ctx: Context, clock: FakeClock, shop: Flow) -> None:
    secret, _ = await enrol(client, clock)
    security = await client.get("/account/security")
    token = csrf_token(security.text.split('action="/account/password"')[1])
    form = {"csrf_token": token, "current_password": PASSWORD,
            "new_password": "a new long passphrase"}
    refused = await client.post("/account/password", data=form)
    assert refused.status_code == 303
    assert refused.headers["location"] == (
        "/account/reauth?next=%2Faccount%2Fsecurity%23password")
    clock.advance(30)
    await reauth_with_code(client, secret, clock, refused.headers["location"])
    changed = await client.post("/account/password", data=form)
    assert changed.status_code == 303
    assert changed.headers["location"] == "/account/security?password=changed#password"
    # The new session keeps the second factor it had (it was dropped before).
    flow = Flow(shop.app)
    tokens = await tokens_after(client, flow, await authorize(client, flow))
    claims = unverified_claims(tokens["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == ACR_MFA


async def test_linking_an_identity_asks_for_the_code(
        browser: httpx.AsyncClient, ctx: Context, clock: FakeClock, google: FakeGoogle
        ) -> None:
    await make_user(ctx)
    secret, _ = await enrol(browser, clock)
    security = await browser.get("/account/security")
    form = {"csrf_token": identities_token(security), "alias": "google"}
    refused = await browser.post("/account/identities/link", data=form)
    assert refused.status_code == 303
    assert refused.headers["location"] == "/account/reauth?next=%2Faccount%2Fsecurity"
    clock.advance(30)
    await reauth_with_code(browser, secret, clock, refused.headers["location"])
    started = await browser.post("/account/identities/link", data=form)
    assert started.status_code == 303
    assert started.headers["location"].startswith(google.base_url)


async def test_an_account_without_a_factor_is_not_asked_for_one(
        client: httpx.AsyncClient, ctx: Context, shop: Flow) -> None:
    await account_sign_in(client)
    for path in ("/account/email", "/account/delete"):
        assert (await client.get(path)).status_code == 200
