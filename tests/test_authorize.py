"""The authorization endpoint, through HTTP (RFC 6749 §3.1, §4.1; OIDC Core §3.1.2; RFC 7636;
RFC 8252 §7.3; RFC 9207; RFC 9700 §2.1, §4.1; OAuth 2.0 Form Post Response Mode)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt as pyjwt
import pytest

from idp.main import create_app
from idp.services.accounts import admin
from idp.services.context import Context, build_context
from idp.settings import Settings
from tests.conftest import ISSUER, FakeClock
from tests.helpers import (
    App,
    Flow,
    approve,
    authorize,
    follow_to_page,
    login,
    make_app,
    make_user,
    query_of,
    redeem,
    texts,
)

ALICE = "alice@example.com"
BOB = "bob@example.com"


@contextmanager
def case(name: str) -> Iterator[None]:
    """Name the failing case when a test walks through a table of them."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"[{name}] {exc}") from exc


# --- what a browser and a client app observe ------------------------------------------------


def assert_error_page(response: httpx.Response, error: str) -> None:
    """An error shown to the end-user: 400, HTML, and no redirect anywhere."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert f"<code>{error}</code>" in response.text


def assert_redirected_error(response: httpx.Response, redirect_uri: str, error: str,
                            state: str | None) -> dict[str, str]:
    """An error delivered to the verified redirect URI, with `state` and `iss` (RFC 9207)."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.split("?")[0] == redirect_uri.split("?")[0]
    query = query_of(location)
    assert query["error"] == error, query
    assert query["iss"] == ISSUER
    if state is None:
        assert "state" not in query
    else:
        assert query["state"] == state
    assert "code" not in query
    return query


def code_of(response: httpx.Response, flow: Flow) -> str:
    """The code from a successful redirect, which always carries `state` and `iss`."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(flow.app.redirect_uri + "?"), location
    query = query_of(location)
    assert set(query) == {"code", "state", "iss"}, query
    assert query["state"] == flow.state
    assert query["iss"] == ISSUER
    return query["code"]


async def post_authorize(http: httpx.AsyncClient, params: Any) -> httpx.Response:
    """POST /authorize with a url-encoded body, keeping repeated parameters."""
    items = params.items() if isinstance(params, dict) else params
    return await http.post("/authorize", content=urlencode(list(items)),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})


def path_of(response: httpx.Response) -> str:
    return urlsplit(str(response.url)).path


def assert_login_page(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"/interaction/[^/]+/login", path_of(response)), response.url


async def id_token_claims(http: httpx.AsyncClient, flow: Flow, code: str) -> dict[str, Any]:
    response = await redeem(http, flow, code)
    assert response.status_code == 200, response.text
    token = response.json()["id_token"]
    jwks = (await http.get("/jwks")).json()
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims: dict[str, Any] = pyjwt.decode(
        token, pyjwt.PyJWK(key).key, algorithms=[key["alg"]], audience=flow.app.client_id,
        issuer=ISSUER, options={"verify_iat": False},
    )
    return claims


async def sign_in(browser: httpx.AsyncClient, flow: Flow, email: str = ALICE,
                  **extra: str) -> str:
    """Log in and consent through the pages; returns the code."""
    page = await authorize(browser, flow, **extra)
    page = await login(browser, page, email)
    if path_of(page).endswith("/consent"):
        page = await approve(browser, page)
    return code_of(page, flow)


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.script_nonces: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.forms.append({"action": values.get("action"), "method": values.get("method"),
                               "inputs": {}})
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1]["inputs"][values.get("name")] = values.get("value")
        elif tag == "script":
            self.script_nonces.append(values.get("nonce"))


def parse_form_post(response: httpx.Response, redirect_uri: str) -> dict[str, str]:
    """An auto-submitting form to the redirect URI, allowed to run by a CSP nonce."""
    assert response.status_code == 200, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    parser = FormParser()
    parser.feed(response.text)
    assert len(parser.forms) == 1
    form = parser.forms[0]
    assert form["action"] == redirect_uri
    assert form["method"] == "post"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    match = re.search(r"script-src 'nonce-([^']+)'", csp)
    assert match, csp
    assert parser.script_nonces == [match.group(1)]
    inputs: dict[str, str] = form["inputs"]
    return inputs


@pytest.fixture
async def shop(ctx: Context) -> App:
    return await make_app(ctx, name="Shop")


@pytest.fixture
async def alice(ctx: Context) -> str:
    return await make_user(ctx, ALICE, name="Alice Example")


# --- client_id and redirect_uri: never redirect before both are verified ---------------------

UNVERIFIED = {
    "client_id missing": (lambda p, a: [(k, v) for k, v in p if k != "client_id"],
                          "invalid_request"),
    "client_id empty": (lambda p, a: [(k, "" if k == "client_id" else v) for k, v in p],
                        "invalid_request"),
    "client_id unknown": (lambda p, a: [(k, "unknown-client" if k == "client_id" else v)
                                        for k, v in p], "invalid_client"),
    "client_id repeated": (lambda p, a: [*p, ("client_id", a.client_id)], "invalid_request"),
    "redirect_uri missing": (lambda p, a: [(k, v) for k, v in p if k != "redirect_uri"],
                             "invalid_request"),
    "redirect_uri empty": (lambda p, a: [(k, "" if k == "redirect_uri" else v) for k, v in p],
                           "invalid_request"),
    "redirect_uri unregistered": (
        lambda p, a: [(k, "https://evil.example/callback" if k == "redirect_uri" else v)
                      for k, v in p], "invalid_request"),
    "redirect_uri repeated": (lambda p, a: [*p, ("redirect_uri", a.redirect_uri)],
                              "invalid_request"),
}
OTHERWISE_BAD = {
    "nothing else": {},
    "prompt=none": {"prompt": "none"},
    "response_type=token": {"response_type": "token"},
    "scope not allowed": {"scope": "openid admin"},
}


@pytest.mark.parametrize("bad", UNVERIFIED.values(), ids=UNVERIFIED.keys())
async def test_unverified_client_or_redirect_uri_gives_an_error_page_never_a_redirect(
    client: httpx.AsyncClient, shop: App, bad: Any
) -> None:
    mutate, error = bad
    for method in ("GET", "POST"):
        for name, extra in OTHERWISE_BAD.items():
            with case(f"{method}, {name}"):
                params = mutate(list(Flow(shop).params(**extra).items()), shop)
                if method == "GET":
                    response = await client.get("/authorize", params=params)
                else:
                    response = await post_authorize(client, params)
                assert_error_page(response, error)
                assert "https://app.example" not in response.text
                assert "https://evil.example" not in response.text


async def test_no_parameters_at_all_gives_an_error_page(client: httpx.AsyncClient) -> None:
    assert_error_page(await client.get("/authorize"), "invalid_request")


async def test_a_client_with_several_redirect_uris_must_name_one(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    new = await admin.create_client(
        ctx, name="Two", redirect_uris=["https://app.example/a", "https://app.example/b"])
    app = App(new.client.client_id, new.client_secret, "https://app.example/a")
    response = await client.get("/authorize", params=Flow(app).params(redirect_uri=None))
    assert_error_page(response, "invalid_request")
    for uri in ("https://app.example/a", "https://app.example/b"):
        flow = Flow(app)
        response = await client.get("/authorize", params=flow.params(redirect_uri=uri,
                                                                     prompt="none"))
        assert_redirected_error(response, uri, "login_required", flow.state)


# --- exact string matching (RFC 9700 §4.1.3, RFC 3986 §6.2.1) -------------------------------

NOT_REGISTERED = [
    "https://APP.example/callback",
    "HTTPS://app.example/callback",
    "https://app.example/Callback",
    "https://app.example/callback/",
    "https://app.example/callbackx",
    "https://app.example/callback?",
    "https://app.example/callback?x=1",
    "https://app.example/callback?next=https://evil.example",
    "https://app.example/callback/../evil",
    "https://app.example/evil/../callback",
    "https://app.example/callback%2F..%2Fevil",
    "https://app.example/%63allback",
    "https://app.example@evil.example/callback",
    "https://app.example@evil/",
    "https://user@app.example/callback",
    "https://app.example/callback#",
    "https://app.example/callback#frag",
    "https://app.example:443/callback",
    "https://app.example./callback",
    "https://app.example.evil.example/callback",
    "https://evil.example/callback",
    "http://app.example/callback",
    " https://app.example/callback",
    "https://app.example/callback ",
    "//app.example/callback",
    "/callback",
]


async def test_redirect_uri_must_match_exactly(client: httpx.AsyncClient, shop: App) -> None:
    for uri in NOT_REGISTERED:
        for extra in ({}, {"prompt": "none"}):
            with case(uri):
                response = await client.get("/authorize", params=Flow(shop).params(
                    redirect_uri=uri, **extra))
                assert_error_page(response, "invalid_request")


async def test_registered_query_must_be_sent_identically_and_is_kept(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx, redirect_uri="https://app.example/cb?tenant=a")
    for uri in ("https://app.example/cb", "https://app.example/cb?tenant=b",
                "https://app.example/cb?tenant=a&x=1", "https://app.example/cb?TENANT=a"):
        response = await client.get("/authorize", params=Flow(app).params(redirect_uri=uri))
        assert_error_page(response, "invalid_request")
    flow = Flow(app)
    response = await client.get("/authorize", params=flow.params(prompt="none"))
    assert response.status_code == 303
    assert response.headers["location"].startswith("https://app.example/cb?tenant=a&error=")
    assert query_of(response.headers["location"])["tenant"] == "a"
    assert_redirected_error(response, app.redirect_uri, "login_required", flow.state)


# --- RFC 8252 §7.3: loopback redirect URIs of native apps -----------------------------------


@pytest.fixture
async def native(ctx: Context) -> App:
    return await make_app(ctx, name="Desktop", redirect_uri="http://127.0.0.1/cb",
                          client_type="public", application_type="native")


LOOPBACK_ACCEPTED = [
    "http://127.0.0.1/cb", "http://127.0.0.1:1/cb", "http://127.0.0.1:53124/cb",
    "http://127.0.0.1:65535/cb",
]
LOOPBACK_REJECTED = [
    "http://localhost/cb",
    "http://localhost:53124/cb",
    "http://127.0.0.1:53124/other",
    "http://127.0.0.1:53124/cb/",
    "http://127.0.0.1:53124/CB",
    "http://127.0.0.1:53124/cb?x=1",
    "http://127.0.0.1:53124/cb#x",
    "http://127.0.0.1:53124/cb#",
    "http://127.0.0.1:/cb",
    "http://127.0.0.1:port/cb",
    "http://[::1]:53124/cb",
    "http://127.0.0.2:53124/cb",
    "http://127.0.0.1.evil.example/cb",
    "http://127.0.0.1:53124@evil.example/cb",
    "http://evil.example@127.0.0.1:53124/cb",
    "https://127.0.0.1:53124/cb",
    "HTTP://127.0.0.1:53124/cb",
]


async def test_native_loopback_redirect_uri_accepts_any_port(
    client: httpx.AsyncClient, native: App
) -> None:
    for uri in LOOPBACK_ACCEPTED:
        with case(uri):
            flow = Flow(native)
            response = await client.get("/authorize", params=flow.params(redirect_uri=uri,
                                                                         prompt="none"))
            assert response.headers["location"].startswith(uri + "?")
            assert_redirected_error(response, uri, "login_required", flow.state)


async def test_native_loopback_redirect_uri_varies_only_in_port(
    client: httpx.AsyncClient, native: App
) -> None:
    for uri in LOOPBACK_REJECTED:
        with case(uri):
            response = await client.get("/authorize", params=Flow(native).params(
                redirect_uri=uri, prompt="none"))
            assert_error_page(response, "invalid_request")


WHITESPACE_AND_CONTROLS = ["\t", "\r", "\n", " ", "\x0b", "\x0c", "\x7f", "\xa0", "\u200b",
                           "\ufeff"]


async def test_a_redirect_uri_with_white_space_or_controls_never_matches(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """urlsplit drops TAB, CR and LF (the WHATWG rule): a native client registered with
    http://127.0.0.1:8999/callback once received the code at http://127.0.0.1:8999/c%09allback.
    Such a URI, on any registered form, gets the error page and never a redirect."""
    loopback = await make_app(ctx, name="Desktop", redirect_uri="http://127.0.0.1:8999/callback",
                              client_type="public", application_type="native")
    private = await make_app(ctx, name="Phone", redirect_uri="com.example.app:/callback",
                             client_type="public", application_type="native")
    web = await make_app(ctx, name="Web")
    for app in (loopback, private, web):
        uri = app.redirect_uri
        for char in WHITESPACE_AND_CONTROLS:
            for requested in (uri.replace("/callback", f"/c{char}allback"), uri + char,
                              char + uri, uri.replace(":", f"{char}:", 1)):
                for extra in ({}, {"prompt": "none"}):
                    with case(repr(requested)):
                        response = await client.get("/authorize", params=Flow(app).params(
                            redirect_uri=requested, **extra))
                        assert_error_page(response, "invalid_request")
    # The registered URI itself still works, on any port for the loopback one.
    for requested in ("http://127.0.0.1:8999/callback", "http://127.0.0.1:51000/callback"):
        flow = Flow(loopback)
        response = await client.get("/authorize", params=flow.params(redirect_uri=requested,
                                                                     prompt="none"))
        assert_redirected_error(response, requested, "login_required", flow.state)


@pytest.mark.parametrize("registration", [
    {"redirect_uri": "HTTPS://app.example/callback"},
    {"redirect_uri": "https://app.example/callback?"},
    {"redirect_uri": "https://app.example/c\x01allback"},
    {"redirect_uri": "https://app.example/c\u00e0llback"},
    {"redirect_uri": "https://app.example/c|allback"},
    {"redirect_uri": "https://app.example/c%zzallback"},
    {"post_logout_redirect_uris": ["https://app.example/signed\x7fout"]},
    {"backchannel_logout_uri": "https://app.example/\tbackchannel"},
    {"backchannel_logout_uri": "http://127.0.0.1.evil.example/backchannel"},
    {"backchannel_logout_uri": "http://127.0.0.1@evil.example/backchannel"},
    {"event_uri": "https://app.example/events\n"},
    {"event_uri": "http://[::1].evil.example/events"},
    {"event_uri": "http://evil.example/events"},
])
async def test_registration_refuses_what_a_parser_would_read_otherwise(
    ctx: Context, registration: dict[str, Any]
) -> None:
    with pytest.raises(admin.InvalidInput):
        await make_app(ctx, **registration)


async def test_loopback_port_rule_is_for_native_clients_only(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    # A web client cannot even register a loopback http URI, nor a port-less https one that
    # would then match other ports.
    with pytest.raises(admin.InvalidInput):
        await make_app(ctx, redirect_uri="http://127.0.0.1/cb")
    app = await make_app(ctx, redirect_uri="https://127.0.0.1/cb")
    response = await client.get("/authorize", params=Flow(app).params(
        redirect_uri="https://127.0.0.1:8443/cb"))
    assert_error_page(response, "invalid_request")


# --- errors after the redirect URI is verified: redirected with state and iss ----------------

REDIRECTED_ERRORS: dict[str, dict[str, tuple[dict[str, str | None], str]]] = {
    "response_type": {
        "missing": ({"response_type": None}, "invalid_request"),
        "empty": ({"response_type": ""}, "invalid_request"),
        "token": ({"response_type": "token"}, "unsupported_response_type"),
        "id_token": ({"response_type": "id_token"}, "unsupported_response_type"),
        "code id_token": ({"response_type": "code id_token"}, "unsupported_response_type"),
        "code token": ({"response_type": "code token"}, "unsupported_response_type"),
        "none": ({"response_type": "none"}, "unsupported_response_type"),
    },
    "scope": {
        "not allowed": ({"scope": "openid admin"}, "invalid_scope"),
        "offered but not registered": ({"scope": "openid address"}, "invalid_scope"),
        "missing": ({"scope": None}, "invalid_scope"),
    },
    "PKCE": {
        "missing (confidential, by default)": (
            {"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        "method plain": ({"code_challenge_method": "plain"}, "invalid_request"),
        "method missing": ({"code_challenge_method": None}, "invalid_request"),
        "method s256": ({"code_challenge_method": "s256"}, "invalid_request"),
        "method alone": ({"code_challenge": None}, "invalid_request"),
        "challenge too short": ({"code_challenge": "abc"}, "invalid_request"),
        "challenge too long": ({"code_challenge": "A" * 44}, "invalid_request"),
        "challenge not base64url": ({"code_challenge": "A" * 42 + "+"}, "invalid_request"),
        "challenge padded": ({"code_challenge": "A" * 42 + "="}, "invalid_request"),
    },
    "prompt": {
        "none without a session": ({"prompt": "none"}, "login_required"),
        "none login": ({"prompt": "none login"}, "invalid_request"),
        "consent none": ({"prompt": "consent none"}, "invalid_request"),
        "unknown value": ({"prompt": "bogus"}, "invalid_request"),
    },
    "request objects": {
        "request": ({"request": "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."},
                    "request_not_supported"),
        "request_uri": ({"request_uri": "https://app.example/request.jwt"},
                        "request_uri_not_supported"),
    },
    "max_age": {
        "negative": ({"max_age": "-1"}, "invalid_request"),
        "not a number": ({"max_age": "ten"}, "invalid_request"),
        "fractional": ({"max_age": "1.5"}, "invalid_request"),
        "with spaces": ({"max_age": " 5"}, "invalid_request"),
        "huge": ({"max_age": "99999999999"}, "invalid_request"),
    },
    "claims": {
        "not JSON": ({"claims": "{not json"}, "invalid_request"),
        "an array": ({"claims": "[]"}, "invalid_request"),
        "id_token an array": ({"claims": '{"id_token": ["name"]}'}, "invalid_request"),
        "member not an object": ({"claims": '{"id_token": {"name": true}}'},
                                 "invalid_request"),
    },
    "other": {
        "response_mode unsupported": ({"response_mode": "fragment"}, "invalid_request"),
        "id_token_hint not ours": ({"id_token_hint": "not.a.token"}, "invalid_request"),
        "parameter too long": ({"nonce": "n" * 5000}, "invalid_request"),
    },
}


@pytest.mark.parametrize("group", REDIRECTED_ERRORS)
async def test_errors_after_the_redirect_uri_is_verified_are_redirected(
    client: httpx.AsyncClient, ctx: Context, group: str
) -> None:
    app = await make_app(ctx, scopes=["openid", "profile", "email"])
    for name, (extra, error) in REDIRECTED_ERRORS[group].items():
        with case(name):
            flow = Flow(app)
            response = await client.get("/authorize", params=flow.params(**extra))
            assert_redirected_error(response, app.redirect_uri, error, flow.state)
            assert response.headers["cache-control"] == "no-store"


async def test_a_repeated_parameter_is_invalid_request(client: httpx.AsyncClient, shop: App
                                                       ) -> None:
    for name in ("scope", "response_type", "nonce", "code_challenge", "prompt", "max_age",
                 "response_mode", "unknown"):
        with case(name):
            flow = Flow(shop)
            params = flow.params(max_age="60", prompt="login", response_mode="query",
                                 unknown="x")
            response = await client.get("/authorize",
                                        params=[*params.items(), (name, params[name])])
            assert_redirected_error(response, shop.redirect_uri, "invalid_request", flow.state)


async def test_a_repeated_state_is_invalid_request_without_echoing_either_value(
    client: httpx.AsyncClient, shop: App
) -> None:
    response = await client.get("/authorize", params=[*Flow(shop).params().items(),
                                                      ("state", "second")])
    assert_redirected_error(response, shop.redirect_uri, "invalid_request", None)


async def test_state_is_optional_and_never_invented(client: httpx.AsyncClient, shop: App
                                                    ) -> None:
    response = await client.get("/authorize", params=Flow(shop).params(state=None,
                                                                       prompt="none"))
    assert_redirected_error(response, shop.redirect_uri, "login_required", None)


async def test_pkce_is_required_for_public_clients(client: httpx.AsyncClient, native: App
                                                   ) -> None:
    flow = Flow(native)
    uri = "http://127.0.0.1:4000/cb"
    response = await client.get("/authorize", params=flow.params(
        redirect_uri=uri, code_challenge=None, code_challenge_method=None))
    assert_redirected_error(response, uri, "invalid_request", flow.state)


async def test_a_confidential_client_opted_out_of_pkce_may_omit_it(
    client: httpx.AsyncClient, ctx: Context, alice: str
) -> None:
    app = await make_app(ctx, require_pkce=False)
    flow = Flow(app)
    page = await authorize(client, flow, code_challenge=None, code_challenge_method=None)
    assert_login_page(page)
    page = await approve(client, await login(client, page))
    code = code_of(page, flow)
    response = await redeem(client, flow, code, code_verifier=None)
    assert response.status_code == 200, response.text


async def test_a_client_without_the_code_grant_is_unauthorized(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx, grant_types=["client_credentials"])
    flow = Flow(app)
    response = await client.get("/authorize", params=flow.params())
    assert_redirected_error(response, app.redirect_uri, "unauthorized_client", flow.state)


async def test_error_description_is_plain_text(client: httpx.AsyncClient, shop: App) -> None:
    response = await client.get("/authorize", params=Flow(shop).params(
        scope="openid <script>\r\n"))
    description = query_of(response.headers["location"])["error_description"]
    assert not set(description) & set('\r\n\t"\\')


async def test_unknown_parameters_are_ignored(client: httpx.AsyncClient, shop: App, alice: str
                                              ) -> None:
    flow = Flow(shop)
    page = await authorize(client, flow, extra="foobar", foo_bar="x" * 100)
    assert_login_page(page)
    page = await approve(client, await login(client, page))
    code_of(page, flow)


async def test_mandatory_oidc_parameters_are_accepted(client: httpx.AsyncClient, shop: App,
                                                      alice: str) -> None:
    flow = Flow(shop)
    page = await authorize(client, flow, ui_locales="fr-CA fr en", claims_locales="fr",
                           login_hint=ALICE, acr_values="urn:idp:acr:password urn:other",
                           display="popup")
    assert_login_page(page)
    # login_hint pre-fills the e-mail field.
    assert re.search(r'<input id="email" name="email"[^>]*value="alice@example.com"', page.text)
    page = await approve(client, await login(client, page))
    claims = await id_token_claims(client, flow, code_of(page, flow))
    assert claims["sub"] == alice


async def test_display_values_do_not_cause_errors(client: httpx.AsyncClient, shop: App
                                                  ) -> None:
    for display in ("page", "popup", "touch", "wap"):
        with case(display):
            assert_login_page(await authorize(client, Flow(shop), display=display))


async def test_login_hint_is_escaped_in_the_page(client: httpx.AsyncClient, shop: App) -> None:
    page = await authorize(client, Flow(shop), login_hint='"><script>alert(1)</script>')
    assert_login_page(page)
    assert "<script>alert(1)" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text


# --- the authorization endpoint by POST (OIDC Core §3.1.2.1) ---------------------------------


async def test_post_authorize_runs_the_whole_flow(client: httpx.AsyncClient, shop: App,
                                                  alice: str) -> None:
    flow = Flow(shop)
    response = await post_authorize(client, flow.params())
    assert response.status_code == 303
    page = await follow_to_page(client, response)
    assert_login_page(page)
    page = await approve(client, await login(client, page))
    claims = await id_token_claims(client, flow, code_of(page, flow))
    assert claims["sub"] == alice
    assert claims["nonce"] == flow.nonce


async def test_post_authorize_redirects_errors_and_rejects_repeats(
    client: httpx.AsyncClient, shop: App
) -> None:
    flow = Flow(shop)
    response = await post_authorize(client, flow.params(response_type="token"))
    assert_redirected_error(response, shop.redirect_uri, "unsupported_response_type",
                            flow.state)
    response = await post_authorize(client, [*flow.params().items(), ("scope", "openid")])
    assert_redirected_error(response, shop.redirect_uri, "invalid_request", flow.state)


# --- response_mode=form_post ----------------------------------------------------------------


async def test_form_post_delivers_the_code_in_an_auto_submitting_form(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    flow = Flow(shop, state='"><script>alert(1)</script>')
    page = await authorize(client, flow, response_mode="form_post")
    page = await approve(client, await login(client, page))
    inputs = parse_form_post(page, shop.redirect_uri)
    assert set(inputs) == {"code", "state", "iss"}
    assert inputs["state"] == flow.state
    assert inputs["iss"] == ISSUER
    assert "<script>alert(1)" not in page.text
    claims = await id_token_claims(client, flow, inputs["code"])
    assert claims["sub"] == alice


async def test_form_post_delivers_errors_too(client: httpx.AsyncClient, shop: App) -> None:
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(
        response_mode="form_post", prompt="none"))
    inputs = parse_form_post(response, shop.redirect_uri)
    assert inputs["error"] == "login_required"
    assert inputs["state"] == flow.state
    assert inputs["iss"] == ISSUER
    assert "code" not in inputs
    response = await client.get("/authorize", params=flow.params(
        response_mode="form_post", scope="openid admin"))
    assert parse_form_post(response, shop.redirect_uri)["error"] == "invalid_scope"


async def test_form_post_nonce_is_fresh_per_response(client: httpx.AsyncClient, shop: App
                                                     ) -> None:
    params = Flow(shop).params(response_mode="form_post", prompt="none")
    first = await client.get("/authorize", params=params)
    second = await client.get("/authorize", params=params)
    assert (first.headers["content-security-policy"]
            != second.headers["content-security-policy"])


async def test_form_post_is_not_used_for_unverified_redirect_uris(
    client: httpx.AsyncClient, shop: App
) -> None:
    response = await client.get("/authorize", params=Flow(shop).params(
        response_mode="form_post", redirect_uri="https://evil.example/cb"))
    assert_error_page(response, "invalid_request")
    assert "<form" not in response.text


# --- sessions, prompt and max_age (OIDC Core §3.1.2.1) -------------------------------------


async def test_prompt_none_with_session_and_consent_returns_a_code_silently(
    client: httpx.AsyncClient, shop: App, alice: str, clock: FakeClock
) -> None:
    first = Flow(shop)
    before = await id_token_claims(client, first, await sign_in(client, first))
    clock.advance(120)
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none"))
    claims = await id_token_claims(client, flow, code_of(response, flow))
    assert claims["sub"] == before["sub"] == alice
    assert claims["auth_time"] == before["auth_time"]
    assert claims["nonce"] == flow.nonce


async def test_without_prompt_a_session_and_consent_give_a_code_straight_away(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    await sign_in(client, Flow(shop))
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params())
    code_of(response, flow)


async def test_prompt_none_with_session_but_no_consent_is_consent_required(
    client: httpx.AsyncClient, ctx: Context, shop: App, alice: str
) -> None:
    await sign_in(client, Flow(shop))
    other = await make_app(ctx, name="Other", redirect_uri="https://app-b.example/cb")
    flow = Flow(other)
    response = await client.get("/authorize", params=flow.params(prompt="none"))
    assert_redirected_error(response, other.redirect_uri, "consent_required", flow.state)


async def test_prompt_none_asking_beyond_the_consent_is_consent_required(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    await sign_in(client, Flow(shop), scope="openid")
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none",
                                                                 scope="openid email"))
    assert_redirected_error(response, shop.redirect_uri, "consent_required", flow.state)
    response = await client.get("/authorize", params=flow.params(
        prompt="none", scope="openid",
        claims=json.dumps({"id_token": {"email": {"essential": True}}})))
    assert_redirected_error(response, shop.redirect_uri, "consent_required", flow.state)
    response = await client.get("/authorize", params=flow.params(prompt="none", scope="openid"))
    code_of(response, flow)


async def test_prompt_consent_asks_again(client: httpx.AsyncClient, shop: App, alice: str
                                         ) -> None:
    await sign_in(client, Flow(shop))
    flow = Flow(shop)
    page = await authorize(client, flow, prompt="consent")
    assert page.status_code == 200
    assert path_of(page).endswith("/consent")
    code_of(await approve(client, page), flow)


async def test_prompt_login_forces_a_new_login_and_a_later_auth_time(
    client: httpx.AsyncClient, shop: App, alice: str, clock: FakeClock
) -> None:
    first = Flow(shop)
    before = await id_token_claims(client, first, await sign_in(client, first))
    clock.advance(30)
    flow = Flow(shop)
    page = await authorize(client, flow, prompt="login")
    assert_login_page(page)
    # Consent is remembered, so logging in leads straight back to the app.
    claims = await id_token_claims(client, flow, code_of(await login(client, page), flow))
    assert claims["sub"] == alice
    assert claims["auth_time"] == before["auth_time"] + 30


async def test_prompt_login_then_the_consent_page_does_not_ask_to_log_in_again(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    """The password sign-in records on the interaction that the customer signed in there
    (written at once, past the ORM): the consent page that follows, for an app not yet
    allowed, leads to the code, not to the login page again as prompt=login would ask."""
    flow = Flow(shop)
    page = await authorize(client, flow, prompt="login")
    assert_login_page(page)
    consent = await login(client, page)
    assert path_of(consent).endswith("/consent")
    claims = await id_token_claims(client, flow, code_of(await approve(client, consent), flow))
    assert claims["sub"] == alice


async def test_max_age_zero_forces_login(client: httpx.AsyncClient, shop: App, alice: str,
                                         clock: FakeClock) -> None:
    first = Flow(shop)
    before = await id_token_claims(client, first, await sign_in(client, first))
    clock.advance(5)
    flow = Flow(shop)
    assert_login_page(await authorize(client, flow, max_age="0"))
    response = await client.get("/authorize", params=flow.params(prompt="none", max_age="0"))
    assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)
    page = await authorize(client, flow, max_age="0")
    claims = await id_token_claims(client, flow, code_of(await login(client, page), flow))
    assert claims["auth_time"] == before["auth_time"] + 5


async def test_elapsed_max_age_forces_login(client: httpx.AsyncClient, shop: App, alice: str,
                                            clock: FakeClock) -> None:
    first = Flow(shop)
    before = await id_token_claims(client, first, await sign_in(client, first))
    clock.advance(61)
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none", max_age="60"))
    assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)
    page = await authorize(client, flow, max_age="60")
    assert_login_page(page)
    claims = await id_token_claims(client, flow, code_of(await login(client, page), flow))
    assert claims["auth_time"] == before["auth_time"] + 61


async def test_max_age_one_second_later_forces_login(client: httpx.AsyncClient, shop: App,
                                                     alice: str, clock: FakeClock) -> None:
    await sign_in(client, Flow(shop))
    clock.advance(1)
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none", max_age="1"))
    assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)


async def test_max_age_not_elapsed_does_not_force_login(client: httpx.AsyncClient, shop: App,
                                                        alice: str, clock: FakeClock) -> None:
    first = Flow(shop)
    before = await id_token_claims(client, first, await sign_in(client, first))
    clock.advance(100)
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(max_age="10000"))
    claims = await id_token_claims(client, flow, code_of(response, flow))
    assert claims["auth_time"] == before["auth_time"]
    assert claims["sub"] == alice
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(max_age="101",
                                                                 prompt="none"))
    code_of(response, flow)


# --- id_token_hint and a requested sub (OIDC Core §3.1.2.1, §3.1.2.2) ------------------------


async def test_id_token_hint_for_the_session_user_succeeds_silently(
    client: httpx.AsyncClient, shop: App, alice: str, clock: FakeClock
) -> None:
    first = Flow(shop)
    code = await sign_in(client, first)
    response = await redeem(client, first, code)
    hint = response.json()["id_token"]
    # An expired ID token still names its end-user.
    clock.advance(3600)
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none",
                                                                 id_token_hint=hint))
    claims = await id_token_claims(client, flow, code_of(response, flow))
    assert claims["sub"] == alice


async def test_id_token_hint_for_another_user_is_login_required_or_a_new_login(
    client: httpx.AsyncClient, new_browser: Any, shop: App, alice: str, ctx: Context
) -> None:
    bob = await make_user(ctx, BOB)
    bobs_browser = new_browser()
    bob_flow = Flow(shop)
    response = await redeem(bobs_browser, bob_flow, await sign_in(bobs_browser, bob_flow, BOB))
    bobs_hint = response.json()["id_token"]

    await sign_in(client, Flow(shop))
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(prompt="none",
                                                                 id_token_hint=bobs_hint))
    assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)
    # Without prompt=none the end-user is asked to log in, and only Bob gets a code.
    page = await authorize(client, flow, id_token_hint=bobs_hint)
    assert_login_page(page)
    claims = await id_token_claims(client, flow, code_of(await login(client, page, BOB), flow))
    assert claims["sub"] == bob


async def test_logging_in_as_someone_else_than_the_hint_names_is_login_required(
    client: httpx.AsyncClient, new_browser: Any, shop: App, alice: str, ctx: Context
) -> None:
    await make_user(ctx, BOB)
    bobs_browser = new_browser()
    bob_flow = Flow(shop)
    response = await redeem(bobs_browser, bob_flow, await sign_in(bobs_browser, bob_flow, BOB))
    bobs_hint = response.json()["id_token"]

    flow = Flow(shop)
    page = await authorize(client, flow, id_token_hint=bobs_hint)
    response = await login(client, page, ALICE)
    # OIDC Core §3.1.2.1: a positive response only if the hinted end-user is logged in.
    assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)


async def test_requested_sub_value_must_be_the_session_user(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    await sign_in(client, Flow(shop))
    flow = Flow(shop)
    for sub, ok in ((alice, True), ("someone-else", False)):
        claims = json.dumps({"id_token": {"sub": {"value": sub}}})
        response = await client.get("/authorize", params=flow.params(prompt="none",
                                                                     claims=claims))
        if ok:
            code_of(response, flow)
        else:
            assert_redirected_error(response, shop.redirect_uri, "login_required", flow.state)


# --- the claims parameter (OIDC Core §5.5) -------------------------------------------------


async def test_essential_name_in_id_token_ends_up_in_the_id_token(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    flow = Flow(shop)
    claims_param = json.dumps({"id_token": {"name": {"essential": True}}})
    page = await authorize(client, flow, scope="openid", claims=claims_param)
    page = await login(client, page)
    assert path_of(page).endswith("/consent")
    assert 'data-claim="name"' in page.text
    claims = await id_token_claims(client, flow, code_of(await approve(client, page), flow))
    assert claims["name"] == "Alice Example"
    assert "email" not in claims


async def test_scope_claims_stay_out_of_the_id_token_unless_requested(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    flow = Flow(shop)
    claims = await id_token_claims(client, flow, await sign_in(client, flow,
                                                               scope="openid profile"))
    assert "name" not in claims
    flow = Flow(shop)
    response = await client.get("/authorize", params=flow.params(
        scope="openid profile", claims=json.dumps({"id_token": {"name": None}})))
    claims = await id_token_claims(client, flow, code_of(response, flow))
    assert claims["name"] == "Alice Example"


async def test_an_essential_acr_that_cannot_be_met_is_access_denied(
    client: httpx.AsyncClient, shop: App, alice: str
) -> None:
    await sign_in(client, Flow(shop))
    flow = Flow(shop)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:gold"]}}})
    response = await client.get("/authorize", params=flow.params(claims=claims))
    assert_redirected_error(response, shop.redirect_uri, "access_denied", flow.state)


# --- a reused code_challenge or nonce (RFC 9700 §2.1.1, §4.8.2): logged, never refused ------


def reuse_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "idp.signin" and r.levelno == logging.WARNING]


async def test_a_reused_code_challenge_or_nonce_is_logged_not_refused(
    client: httpx.AsyncClient, ctx: Context, shop: App, alice: str,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="idp.signin")
    first = Flow(shop)
    assert_login_page(await authorize(client, first))
    assert reuse_warnings(caplog) == []
    # The same challenge (same verifier), a new nonce: still served, and logged.
    again = Flow(shop, verifier=first.verifier)
    assert_login_page(await authorize(client, again))
    [warning] = reuse_warnings(caplog)
    assert shop.client_id in warning and "code_challenge" in warning
    assert "nonce" not in warning
    # The same nonce, a new challenge; then both at once.
    caplog.clear()
    assert_login_page(await authorize(client, Flow(shop, nonce=first.nonce)))
    [warning] = reuse_warnings(caplog)
    assert shop.client_id in warning and "the nonce of" in warning
    caplog.clear()
    code = await sign_in(client, Flow(shop, verifier=first.verifier, nonce=first.nonce))
    assert code
    [warning] = reuse_warnings(caplog)
    assert "code_challenge and nonce" in warning
    # Never the values themselves.
    logged = texts(caplog.records)
    for value in (first.challenge, first.nonce, first.verifier):
        assert value not in logged


async def test_reuse_is_seen_after_the_code_was_issued_and_across_replicas(
    client: httpx.AsyncClient, ctx: Context, settings: Settings, clock: FakeClock, shop: App,
    alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The first request was answered with a code (its interaction is gone), and the second
    reaches another replica: the database, not a process, remembers."""
    caplog.set_level(logging.INFO, logger="idp.signin")
    first = Flow(shop)
    await sign_in(client, first)
    other = build_context(settings, clock=clock)
    try:
        replica = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_app(settings, ctx=other)), base_url=ISSUER)
        async with replica:
            flow = Flow(shop, verifier=first.verifier)
            assert_login_page(await authorize(replica, flow))
    finally:
        await other.close()
    [warning] = reuse_warnings(caplog)
    assert shop.client_id in warning and "code_challenge" in warning


async def test_fresh_values_another_client_or_a_minute_later_are_not_reuse(
    client: httpx.AsyncClient, ctx: Context, shop: App, alice: str, clock: FakeClock,
    caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="idp.signin")
    first = Flow(shop)
    assert_login_page(await authorize(client, first))
    assert_login_page(await authorize(client, Flow(shop)))
    other = await make_app(ctx, name="Other", redirect_uri="https://app.example/other")
    assert_login_page(await authorize(client, Flow(other, verifier=first.verifier,
                                                     nonce=first.nonce)))
    clock.advance(61)
    assert_login_page(await authorize(client, Flow(shop, verifier=first.verifier,
                                                    nonce=first.nonce)))
    assert reuse_warnings(caplog) == []
