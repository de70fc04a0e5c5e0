"""The token endpoint, authorization_code grant (RFC 6749 §2.3, §3.2, §4.1.3, §5; RFC 7636;
RFC 9700 §2.1.1, §4.2.4, §4.8), observed as a client would."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from idp.services.accounts import admin
from idp.services.context import Context
from tests.conftest import FakeClock
from tests.helpers import (
    PASSWORD,
    App,
    Flow,
    get_code,
    make_app,
    make_user,
    pkce_pair,
    redeem,
    unverified_claims,
)

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
async def alice(ctx: Context) -> str:
    return await make_user(ctx)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def code_request(flow: Flow, code: str, **extra: str | None) -> dict[str, str]:
    data: dict[str, str | None] = {
        "grant_type": "authorization_code", "code": code,
        "redirect_uri": flow.app.redirect_uri, "code_verifier": flow.verifier,
    }
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


async def post_token(http: httpx.AsyncClient, data: dict[str, str],
                     headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/token", data=data, headers=headers or {})


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    # RFC 6749 §5.1/§5.2: no caching of token endpoint answers, errors included.
    assert response.headers["cache-control"] == "no-store"
    if status == 401:
        # RFC 6749 §5.2: a 401 carries a challenge for the scheme the client can use.
        assert response.headers["www-authenticate"].startswith("Basic ")


def assert_tokens(response: httpx.Response, scope: str = "openid profile email") -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == scope
    assert body["access_token"].count(".") == 2
    if "openid" in scope.split():
        assert body["id_token"].count(".") == 2
    return body


async def get_userinfo(http: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await http.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})


async def table_dump(ctx: Context, table: str) -> str:
    async with ctx.db.transaction() as session:
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
    assert rows, f"{table} is empty: nothing to check"
    return repr(rows)


# --- client authentication (RFC 6749 §2.3) -----------------------------------------------


async def test_client_secret_basic(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    assert_tokens(await post_token(client, code_request(flow, code),
                                   basic(app.client_id, app.client_secret or "")))


async def test_client_secret_basic_credentials_are_form_urlencoded(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded, then Basic-encoded.
    Percent-encoding every octet is a valid encoding the server must decode."""
    app = await make_app(ctx)
    assert app.client_secret
    flow = Flow(app)
    code = await get_code(client, flow)

    def encode(value: str) -> str:
        return "".join(f"%{octet:02X}" for octet in value.encode())

    headers = basic(encode(app.client_id), encode(app.client_secret))
    assert_tokens(await post_token(client, code_request(flow, code), headers))


async def test_client_secret_post(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx, token_endpoint_auth_method="client_secret_post")
    assert app.client_secret
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code, client_id=app.client_id, client_secret=app.client_secret)
    assert_tokens(await post_token(client, data))


async def test_public_client_authenticates_with_client_id_only(client: httpx.AsyncClient,
                                                               ctx: Context) -> None:
    app = await make_app(ctx, client_type="public")
    assert app.client_secret is None
    flow = Flow(app)
    code = await get_code(client, flow)
    assert_tokens(await post_token(client, code_request(flow, code, client_id=app.client_id)))


async def test_wrong_secret_basic_is_invalid_client_and_keeps_the_code(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code),
                                basic(app.client_id, "not-the-secret"))
    assert_error(response, 401, "invalid_client")
    # An unauthenticated request must not be able to burn a client's code.
    assert_tokens(await redeem(client, flow, code))


async def test_wrong_secret_post_is_invalid_client(client: httpx.AsyncClient,
                                                   ctx: Context) -> None:
    app = await make_app(ctx, token_endpoint_auth_method="client_secret_post")
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code, client_id=app.client_id,
                        client_secret=(app.client_secret or "") + "x")
    assert_error(await post_token(client, data), 401, "invalid_client")
    data = code_request(flow, code, client_id=app.client_id, client_secret="")
    assert_error(await post_token(client, data), 401, "invalid_client")


async def test_secret_of_another_client_is_invalid_client(client: httpx.AsyncClient,
                                                          ctx: Context) -> None:
    app = await make_app(ctx)
    other = await make_app(ctx, name="Other")
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code),
                                basic(app.client_id, other.client_secret or ""))
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("how", ["basic", "post", "none", "no_client_id"])
async def test_unknown_client_is_invalid_client(client: httpx.AsyncClient, how: str) -> None:
    flow = Flow(App("no-such-client", "whatever", "https://app.example/callback"))
    data = code_request(flow, "some-code")
    headers: dict[str, str] = {}
    if how == "basic":
        headers = basic("no-such-client", "whatever")
    elif how == "post":
        data.update(client_id="no-such-client", client_secret="whatever")
    elif how == "none":
        data["client_id"] = "no-such-client"
    assert_error(await post_token(client, data, headers), 401, "invalid_client")


@pytest.mark.parametrize("how", ["basic", "post", "none"])
async def test_client_id_with_nul_is_invalid_client(client: httpx.AsyncClient, how: str) -> None:
    # PostgreSQL cannot compare text with NUL; the lookup must answer "unknown", not fail.
    data = {"grant_type": "authorization_code", "code": "c", "redirect_uri": "https://a.example"}
    headers: dict[str, str] = {}
    if how == "basic":
        headers = basic("a\x00b", "secret")
    else:
        data["client_id"] = "a\x00b"
        if how == "post":
            data["client_secret"] = "secret"
    assert_error(await post_token(client, data, headers), 401, "invalid_client")


async def test_confidential_client_without_secret_is_invalid_client(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code, client_id=app.client_id))
    assert_error(response, 401, "invalid_client")
    assert_tokens(await redeem(client, flow, code))


async def test_basic_client_using_post_is_invalid_client(client: httpx.AsyncClient,
                                                         ctx: Context) -> None:
    app = await make_app(ctx)  # registered for client_secret_basic
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code, client_id=app.client_id, client_secret=app.client_secret)
    assert_error(await post_token(client, data), 401, "invalid_client")


async def test_post_client_using_basic_is_invalid_client(client: httpx.AsyncClient,
                                                         ctx: Context) -> None:
    app = await make_app(ctx, token_endpoint_auth_method="client_secret_post")
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code),
                                basic(app.client_id, app.client_secret or ""))
    assert_error(response, 401, "invalid_client")


@pytest.mark.parametrize("how", ["basic", "post"])
async def test_public_client_sending_a_secret_is_invalid_client(
    client: httpx.AsyncClient, ctx: Context, how: str
) -> None:
    app = await make_app(ctx, client_type="public")
    flow = Flow(app)
    code = await get_code(client, flow)
    if how == "basic":
        response = await post_token(client, code_request(flow, code),
                                    basic(app.client_id, "invented"))
    else:
        response = await post_token(client, code_request(
            flow, code, client_id=app.client_id, client_secret="invented"))
    assert_error(response, 401, "invalid_client")


async def test_two_authentication_methods_at_once_is_invalid_request(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """RFC 6749 §2.3: the client MUST NOT use more than one authentication method."""
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code, client_id=app.client_id, client_secret=app.client_secret)
    response = await post_token(client, data, app.basic())
    assert_error(response, 400, "invalid_request")
    assert_tokens(await redeem(client, flow, code))


async def test_client_id_in_body_differing_from_basic_is_invalid_request(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx)
    other = await make_app(ctx, name="Other")
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code, client_id=other.client_id)
    assert_error(await post_token(client, data, app.basic()), 400, "invalid_request")


@pytest.mark.parametrize("header", [
    b"Basic !!!not-base64!!!",
    b"Basic " + base64.b64encode(b"no-colon-here"),
    b"Basic " + base64.b64encode(b"\xff\xfe:\xfd"),  # not UTF-8
    b"Basic \xff\xfe",  # not even ASCII
    b"Basic",
])
async def test_malformed_basic_header_is_invalid_client(client: httpx.AsyncClient,
                                                        ctx: Context, header: bytes) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await client.post("/token", data=code_request(flow, code),
                                 headers={"Authorization": header})
    assert_error(response, 401, "invalid_client")
    assert_tokens(await redeem(client, flow, code))


# --- request shape (RFC 6749 §3.2, §5.2) ---------------------------------------------------


async def test_missing_grant_type_is_invalid_request(client: httpx.AsyncClient,
                                                     ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code, grant_type=None), app.basic())
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:example:unknown"])
async def test_unknown_grant_type_is_unsupported_grant_type(
    client: httpx.AsyncClient, ctx: Context, grant_type: str
) -> None:
    # RFC 9700 §2.4: no resource owner password credentials grant.
    app = await make_app(ctx)
    data = {"grant_type": grant_type, "username": "alice@example.com", "password": PASSWORD}
    assert_error(await post_token(client, data, app.basic()), 400, "unsupported_grant_type")


async def test_grant_type_not_registered_for_client_is_unauthorized_client(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    # The operator reconfigures the app as a machine-to-machine client (as the admin API
    # and the CLI do: this process's cached copy of the client is dropped).
    await admin.update_client(ctx, app.client_id, {"grant_types": ["client_credentials"]})
    assert_error(await redeem(client, flow, code), 400, "unauthorized_client")


@pytest.mark.parametrize("kind", ["json", "multipart", "text/plain", "absent"])
async def test_wrong_content_type_is_invalid_request(client: httpx.AsyncClient, ctx: Context,
                                                     kind: str) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code)
    if kind == "json":
        response = await client.post("/token", json=data, headers=app.basic())
    elif kind == "multipart":
        response = await client.post("/token", data=data, files={"f": ("f", b"x")},
                                     headers=app.basic())
    else:
        headers = app.basic() if kind == "absent" else {**app.basic(), "Content-Type": kind}
        response = await client.post("/token", content=str(httpx.QueryParams(data)).encode(),
                                     headers=headers)
    assert_error(response, 400, "invalid_request")
    # The refused request did not touch the code.
    assert_tokens(await redeem(client, flow, code))


async def test_form_content_type_with_charset_is_accepted(client: httpx.AsyncClient,
                                                          ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    body = str(httpx.QueryParams(code_request(flow, code)))
    response = await client.post("/token", content=body.encode(), headers={
        **app.basic(), "Content-Type": f"{FORM}; charset=UTF-8"})
    assert_tokens(response)


@pytest.mark.parametrize("name", ["code", "grant_type", "redirect_uri", "code_verifier"])
async def test_repeated_parameter_is_invalid_request(client: httpx.AsyncClient, ctx: Context,
                                                     name: str) -> None:
    """RFC 6749 §3.2: request and response parameters MUST NOT be included more than once."""
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    data = code_request(flow, code)
    pairs = [*data.items(), (name, data[name])]
    response = await client.post("/token", content=str(httpx.QueryParams(pairs)).encode(),
                                 headers={**app.basic(), "Content-Type": FORM})
    assert_error(response, 400, "invalid_request")
    assert_tokens(await redeem(client, flow, code))


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_request_is_refused_uncached(client: httpx.AsyncClient, ctx: Context,
                                                     chunked: bool) -> None:
    app = await make_app(ctx)
    body = b"grant_type=authorization_code&code=" + b"a" * 100_000

    async def stream() -> Any:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    response = await client.post("/token", content=stream() if chunked else body,
                                 headers={**app.basic(), "Content-Type": FORM})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


async def test_missing_code_is_invalid_request(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    data = code_request(flow, "x")
    del data["code"]
    response = await post_token(client, data, app.basic())
    assert_error(response, 400, "invalid_request")


async def test_missing_redirect_uri_is_invalid_request(client: httpx.AsyncClient,
                                                       ctx: Context) -> None:
    # OIDC Core §3.1.3.2 / RFC 6749 §4.1.3: required, since it was in the authorization request.
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await post_token(client, code_request(flow, code, redirect_uri=None), app.basic())
    assert_error(response, 400, "invalid_request")


# --- the authorization code (RFC 6749 §4.1.2, §4.1.3; RFC 9700 §4.2.4) --------------------


async def test_unknown_code_is_invalid_grant(client: httpx.AsyncClient, ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    await get_code(client, flow)
    response = await redeem(client, flow, pkce_pair()[0])
    assert_error(response, 400, "invalid_grant")


async def test_code_is_single_use_and_replay_revokes_its_tokens(client: httpx.AsyncClient,
                                                                ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    first = assert_tokens(await redeem(client, flow, code))
    assert (await get_userinfo(client, first["access_token"])).status_code == 200

    assert_error(await redeem(client, flow, code), 400, "invalid_grant")
    # RFC 6749 §4.1.2 / RFC 9700 §4.2.4: tokens issued from a replayed code are revoked.
    response = await get_userinfo(client, first["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_replay_leaves_other_browser_sessions_alone(ctx: Context,
                                                         new_browser: Any) -> None:
    app = await make_app(ctx)
    phone, laptop = new_browser(), new_browser()
    phone_flow, laptop_flow = Flow(app), Flow(app)
    phone_code = await get_code(phone, phone_flow)
    laptop_code = await get_code(laptop, laptop_flow)
    assert_tokens(await redeem(phone, phone_flow, phone_code))
    laptop_tokens = assert_tokens(await redeem(laptop, laptop_flow, laptop_code))
    assert_error(await redeem(phone, phone_flow, phone_code), 400, "invalid_grant")
    assert (await get_userinfo(laptop, laptop_tokens["access_token"])).status_code == 200


async def test_replay_revokes_what_that_code_issued_and_nothing_else_of_the_session(
        client: httpx.AsyncClient, ctx: Context) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.2.4, exactly: one app's replayed code in a browser
    session ends that code's tokens and the refresh chain it began, not the other tokens the
    same grant got in the same session."""
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         long_sessions=True)
    first_flow, second_flow = Flow(app), Flow(app)
    first_code = await get_code(client, first_flow)
    first = assert_tokens(await redeem(client, first_flow, first_code))
    # Single sign-on: the same browser session, the same grant, a second code.
    second = assert_tokens(await redeem(client, second_flow, await get_code(client, second_flow)))
    sids = {unverified_claims(body["id_token"])["sid"] for body in (first, second)}
    assert len(sids) == 1
    rotated = assert_tokens(await post_token(client, {
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, app.basic()))

    assert_error(await redeem(client, first_flow, first_code), 400, "invalid_grant")
    for token in (first["access_token"], rotated["access_token"]):
        assert (await get_userinfo(client, token)).status_code == 401
    assert_error(await post_token(client, {"grant_type": "refresh_token",
                                           "refresh_token": rotated["refresh_token"]},
                                  app.basic()), 400, "invalid_grant")
    # The second code's tokens live on, and its refresh chain still rotates.
    assert (await get_userinfo(client, second["access_token"])).status_code == 200
    renewed = assert_tokens(await post_token(client, {
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]}, app.basic()))
    assert (await get_userinfo(client, renewed["access_token"])).status_code == 200


async def test_code_expires_after_60_seconds(client: httpx.AsyncClient, ctx: Context,
                                             clock: FakeClock) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    clock.advance(61)
    assert_error(await redeem(client, flow, code), 400, "invalid_grant")


async def test_code_is_valid_just_before_60_seconds(client: httpx.AsyncClient, ctx: Context,
                                                    clock: FakeClock) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    clock.advance(59)
    assert_tokens(await redeem(client, flow, code))


async def test_code_of_another_client_is_invalid_grant_and_not_burnt(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """RFC 6749 §4.1.3: the code must have been issued to the authenticated client."""
    app = await make_app(ctx)
    thief = await make_app(ctx, name="Thief")
    flow = Flow(app)
    code = await get_code(client, flow)
    stolen = Flow(thief, verifier=flow.verifier)
    assert_error(await redeem(client, stolen, code), 400, "invalid_grant")
    body = assert_tokens(await redeem(client, flow, code))
    assert (await get_userinfo(client, body["access_token"])).status_code == 200
    # Presenting it after the rightful redemption is still refused, and is no replay by the
    # rightful client, so its tokens stay valid.
    assert_error(await redeem(client, stolen, code), 400, "invalid_grant")
    assert (await get_userinfo(client, body["access_token"])).status_code == 200


async def test_different_redirect_uri_is_invalid_grant(client: httpx.AsyncClient,
                                                       ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    for other in ("https://app.example/other", "https://app.example/callback/",
                  "https://APP.example/callback"):
        response = await redeem(client, flow, code, redirect_uri=other)
        assert_error(response, 400, "invalid_grant")


# --- PKCE (RFC 7636 §4.6; RFC 9700 §2.1.1, §4.8.2) -----------------------------------------


async def test_missing_code_verifier_is_invalid_grant(client: httpx.AsyncClient,
                                                      ctx: Context) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    assert_error(await redeem(client, flow, code, code_verifier=None), 400, "invalid_grant")


async def test_wrong_code_verifier_is_invalid_grant_and_burns_the_code(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    response = await redeem(client, flow, code, code_verifier=pkce_pair()[0])
    assert_error(response, 400, "invalid_grant")
    # No second guess at the verifier.
    assert_error(await redeem(client, flow, code), 400, "invalid_grant")


async def test_public_client_wrong_verifier_burns_the_code(client: httpx.AsyncClient,
                                                           ctx: Context) -> None:
    app = await make_app(ctx, client_type="public")
    flow = Flow(app)
    code = await get_code(client, flow)
    assert_error(await redeem(client, flow, code, code_verifier=pkce_pair()[0]), 400,
                 "invalid_grant")
    assert_error(await redeem(client, flow, code), 400, "invalid_grant")


@pytest.mark.parametrize("verifier", [
    "short",
    "a" * 129,
    "contains space and is long enough to pass the length test!",
    "plus+signs+are+not+unreserved+characters+at+all+x",
    "",
])
async def test_malformed_code_verifier_is_invalid_grant(client: httpx.AsyncClient,
                                                        ctx: Context, verifier: str) -> None:
    app = await make_app(ctx)
    flow = Flow(app)
    code = await get_code(client, flow)
    assert_error(await redeem(client, flow, code, code_verifier=verifier), 400, "invalid_grant")


@pytest.mark.parametrize("verifier", [
    "a" * 42,  # one short of RFC 7636's 43
    "b" * 129,  # one over 128
    "x" * 40 + "é!+/",  # outside the unreserved set
])
async def test_malformed_verifier_matching_its_challenge_is_invalid_grant(
    client: httpx.AsyncClient, ctx: Context, verifier: str
) -> None:
    """RFC 7636 §4.1: the verifier's form is checked, not only its hash."""
    app = await make_app(ctx)
    flow = Flow(app, verifier=verifier)
    code = await get_code(client, flow)
    assert_error(await redeem(client, flow, code), 400, "invalid_grant")


async def test_longest_and_shortest_wellformed_verifiers_work(client: httpx.AsyncClient,
                                                              ctx: Context) -> None:
    app = await make_app(ctx)
    for verifier in ("A" * 43, "-._~" * 32):
        flow = Flow(app, verifier=verifier)
        code = await get_code(client, flow)
        assert_tokens(await redeem(client, flow, code))


async def test_confidential_client_without_pkce_may_redeem(client: httpx.AsyncClient,
                                                           ctx: Context) -> None:
    app = await make_app(ctx, require_pkce=False)
    flow = Flow(app)
    code = await get_code(client, flow, code_challenge=None, code_challenge_method=None)
    assert_tokens(await redeem(client, flow, code, code_verifier=None))


async def test_verifier_without_challenge_is_invalid_grant(client: httpx.AsyncClient,
                                                           ctx: Context) -> None:
    """RFC 9700 §4.8.2: PKCE downgrade — a code_verifier for a code requested without
    code_challenge is refused."""
    app = await make_app(ctx, require_pkce=False)
    flow = Flow(app)
    code = await get_code(client, flow, code_challenge=None, code_challenge_method=None)
    assert_error(await redeem(client, flow, code), 400, "invalid_grant")


# --- storage --------------------------------------------------------------------------------


async def test_codes_and_client_secrets_are_stored_hashed(client: httpx.AsyncClient,
                                                          ctx: Context) -> None:
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         long_sessions=True)
    assert app.client_secret
    flow = Flow(app)
    code = await get_code(client, flow)
    codes = await table_dump(ctx, "authorization_codes")
    assert code not in codes
    clients = await table_dump(ctx, "clients")
    assert app.client_id in clients
    assert app.client_secret not in clients
    body = assert_tokens(await redeem(client, flow, code))
    assert body["refresh_token"]
    # Revoked, the access token is named on the revocation list: by its jti only.
    await client.post("/revoke", data={"token": body["access_token"]}, headers=app.basic())
    for table in ("authorization_codes", "refresh_tokens", "token_revocations", "clients"):
        dump = await table_dump(ctx, table)
        for secret in (code, app.client_secret, body["access_token"], body["refresh_token"]):
            assert secret not in dump, table


async def test_code_replay_also_revokes_the_refresh_token_issued_from_it(
    client: httpx.AsyncClient, ctx: Context
) -> None:
    """RFC 6749 §4.1.2 / RFC 9700 §4.2.4: *all* tokens issued from a replayed code."""
    app = await make_app(ctx, grant_types=["authorization_code", "refresh_token"],
                         long_sessions=True)
    flow = Flow(app)
    code = await get_code(client, flow)
    first = assert_tokens(await redeem(client, flow, code))
    assert "refresh_token" in first
    # The attacker who redeemed first already rotated the refresh token.
    rotated = assert_tokens(await post_token(client, {
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}, app.basic()))
    assert (await get_userinfo(client, rotated["access_token"])).status_code == 200

    assert_error(await redeem(client, flow, code), 400, "invalid_grant")
    refreshed = await post_token(client, {"grant_type": "refresh_token",
                                          "refresh_token": rotated["refresh_token"]},
                                 app.basic())
    assert_error(refreshed, 400, "invalid_grant")
    for token in (first["access_token"], rotated["access_token"]):
        assert (await get_userinfo(client, token)).status_code == 401
