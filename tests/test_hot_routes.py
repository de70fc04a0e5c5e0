"""The hot protocol endpoints (idp.web.hot) skip FastAPI's router, and answer every request,
good or bad, exactly as the full stack does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi.responses import JSONResponse

from idp.main import create_app
from idp.services.context import Context
from idp.settings import Settings
from idp.web import hot
from idp.web.responses import JSONBody
from tests.conftest import ISSUER
from tests.helpers import (
    PASSWORD,
    Flow,
    authorize,
    csrf_token,
    get_code,
    make_app,
    make_user,
    redeem,
)

# Differ between any two answers, whichever stack gave them.
VOLATILE = {"date", "x-request-id"}


class RouterSpy:
    """Stands in for the app's router and notes the paths that reach it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.paths = inner, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope.get("path"))
        await self.inner(scope, receive, send)


@pytest.fixture
async def pair(settings: Settings, ctx: Context, monkeypatch: pytest.MonkeyPatch
               ) -> AsyncIterator[Callable[[], tuple[httpx.AsyncClient, httpx.AsyncClient]]]:
    """Two apps on one context: with the hot routes, and with none (the full stack)."""
    fast = create_app(settings, ctx=ctx)
    monkeypatch.setattr(hot, "HOT_PATHS", frozenset())
    monkeypatch.setattr(hot, "HOT_TEMPLATES", frozenset())
    full = create_app(settings, ctx=ctx)
    full.middleware_stack = full.build_middleware_stack()  # HotRoutes takes them now
    monkeypatch.undo()
    clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app,
                                                               raise_app_exceptions=False),
                                 base_url=ISSUER) for app in (fast, full)]
    yield lambda: (clients[0], clients[1])
    for http in clients:
        await http.aclose()


def observed(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    return response.status_code, headers, response.content


async def test_hot_paths_never_reach_the_router(settings: Settings, ctx: Context) -> None:
    # An app of its own: the spy must be in place before the app builds its middleware stack
    # (on its first request), and must not stay in the suite's shared app.
    app = create_app(settings, ctx=ctx)
    spy = RouterSpy(app.router)
    app.router = spy
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=ISSUER) as client:
        for method, path in [("GET", "/.well-known/openid-configuration"),
                             ("GET", "/.well-known/oauth-authorization-server"),
                             ("GET", "/jwks"), ("GET", "/userinfo"), ("POST", "/userinfo"),
                             ("POST", "/token"), ("POST", "/introspect"), ("POST", "/revoke"),
                             ("POST", "/interaction/" + "i" * 32 + "/login")]:
            response = await client.request(method, path)
            assert response.status_code in (200, 400, 401), (path, response.text)
        assert spy.paths == []
        # Any other path, and a hot path with another method, goes the usual way; so does
        # a path the page's template does not match as a whole.
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/token")).status_code == 405
        assert (await client.get("/interaction/x/login")).status_code == 400
        assert (await client.post("/interaction/x/y/login")).status_code == 404
        slash = await client.post("/interaction/x/login/")  # the router's own redirect
        assert slash.status_code == 307
        assert slash.headers["location"].endswith("/interaction/x/login")
        assert spy.paths == ["/health/live", "/token", "/interaction/x/login",
                             "/interaction/x/y/login", "/interaction/x/login/"]
        metrics = (await client.get("/metrics")).text
        assert 'route="/userinfo",status="401"' in metrics
        assert 'route="/jwks",status="200"' in metrics
        # The page's template, as the router labels it.
        assert 'method="POST",route="/interaction/{interaction_id}/login",status="400"' in metrics


async def test_answers_are_those_of_the_full_stack(
        pair: Callable[[], tuple[httpx.AsyncClient, httpx.AsyncClient]], ctx: Context) -> None:
    fast, full = pair()
    await make_user(ctx)
    shop = await make_app(ctx)
    flow = Flow(shop)
    tokens = (await redeem(fast, flow, await get_code(fast, flow))).json()
    access = tokens["access_token"]
    basic = shop.basic()
    form = {"content-type": "application/x-www-form-urlencoded"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/.well-known/openid-configuration", {}),
        ("GET", "/.well-known/oauth-authorization-server", {}),
        ("GET", "/jwks", {}),
        # UserInfo: good, missing, malformed, forged, sent twice, in the body
        ("GET", "/userinfo", {"headers": {"authorization": f"Bearer {access}"}}),
        ("POST", "/userinfo", {"data": {"access_token": access}}),
        ("GET", "/userinfo", {}),
        ("GET", "/userinfo", {"headers": {"authorization": "Bearer "}}),
        ("GET", "/userinfo", {"headers": {"authorization": f"Bearer {access[:-4]}AAAA"}}),
        ("POST", "/userinfo", {"headers": {"authorization": f"Bearer {access}"},
                               "data": {"access_token": access}}),
        ("GET", "/userinfo", {"headers": {"authorization": "Basic eDp5"}}),
        # Introspection: active, unknown, unauthenticated, not a form
        ("POST", "/introspect", {"headers": basic, "data": {"token": access}}),
        ("POST", "/introspect", {"headers": basic, "data": {"token": "x" * 40}}),
        ("POST", "/introspect", {"data": {"token": access}}),
        ("POST", "/introspect", {"headers": {**basic, "content-type": "application/json"},
                                 "content": b'{"token": "x"}'}),
        # The token endpoint's errors
        ("POST", "/token", {"data": {"grant_type": "password"}, "headers": basic}),
        ("POST", "/token", {"data": {"grant_type": "authorization_code", "code": "nope",
                                     "redirect_uri": shop.redirect_uri,
                                     "code_verifier": flow.verifier}, "headers": basic}),
        ("POST", "/token", {"data": {"grant_type": "client_credentials"},
                            "headers": {"authorization": "Basic bm90Omtub3du"}}),
        ("POST", "/token", {"content": b"grant_type=refresh_token&grant_type=refresh_token",
                            "headers": {**basic, **form}}),
        ("POST", "/token", {"content": b"\xff\xfe", "headers": {**basic, **form}}),
        ("POST", "/token", {}),
        # More form fields than any request has (the form parser's limit)
        ("POST", "/token", {"content": "&".join(f"f{i}=x" for i in range(150)).encode(),
                            "headers": {**basic, **form}}),
        # Revocation of an unknown token: 200, nothing said (RFC 7009 §2.2)
        ("POST", "/revoke", {"headers": basic, "data": {"token": "unknown"}}),
        ("POST", "/revoke", {"data": {"token": "unknown"}}),
    ]
    for method, path, options in requests:
        answers = [observed(await http.request(method, path, **options)) for http in (fast, full)]
        assert answers[0] == answers[1], (method, path, options, answers)
        assert answers[0][0] < 500, (method, path, answers[0])  # nothing here is a bug
    # The same token revoked through the hot route is inactive on both.
    assert (await fast.post("/revoke", headers=basic, data={"token": access})).status_code == 200
    for http in (fast, full):
        answer = await http.post("/introspect", headers=basic, data={"token": access})
        assert answer.json() == {"active": False}


def _without_challenge(answer: tuple[int, dict[str, str], bytes]
                       ) -> tuple[int, dict[str, str], bytes]:
    """The login page's passkey challenge is new on every page (WebAuthn §13.4.3)."""
    status, headers, body = answer
    return status, headers, re.sub(rb"challenge&#34;: &#34;[\w-]+", b"challenge", body)


async def test_the_password_post_answers_as_the_full_stack(
        pair: Callable[[], tuple[httpx.AsyncClient, httpx.AsyncClient]], ctx: Context) -> None:
    """The login page's password post (a hot page): a wrong password, in English and in
    Arabic, a forged or missing CSRF token, a form of another type, an interaction that is
    not there: each answer the same page, status and headers (the language's too) from both
    stacks, for the same browser. The right password signs in through either (a session
cookie of its own each, and on to the consent page)."""
    fast, full = pair()
    await make_user(ctx)
    flow = Flow(await make_app(ctx))
    page = await authorize(fast, flow)
    assert page.url.path.endswith("/login")
    full.cookies = fast.cookies  # the same browser
    path, token = page.url.path, csrf_token(page.text)
    wrong = {"csrf_token": token, "email": "alice@example.com", "password": "not-it"}
    requests: list[tuple[str, dict[str, Any]]] = [
        (path, {"data": wrong}),
        (path, {"data": wrong, "headers": {"accept-language": "ar"}}),
        (path, {"data": {**wrong, "csrf_token": token[:-2] + "xx"}}),
        (path, {"data": {"email": "alice@example.com", "password": "not-it"}}),
        (path, {"json": wrong}),
        ("/interaction/" + "i" * 32 + "/login", {"data": wrong}),
    ]
    for target, options in requests:
        answers = [_without_challenge(observed(await http.post(target, **options)))
                   for http in (fast, full)]
        assert answers[0] == answers[1], (target, options, answers)
        assert answers[0][0] < 500, (target, answers[0])
    assert "not-it" not in answers[0][2].decode()
    right = {**wrong, "password": PASSWORD}
    for http in (fast, full):
        page = await authorize(http, Flow(flow.app))
        signed_in = await http.post(page.url.path, data={**right,
                                                         "csrf_token": csrf_token(page.text)})
        assert signed_in.status_code == 303  # on to the consent page (none given yet)
        assert signed_in.headers["location"] == page.url.path.replace("/login", "/consent")
        assert any(c.name.endswith("idp_session") for c in http.cookies.jar)


async def test_an_unexpected_failure_is_a_bare_500_as_anywhere(
        pair: Callable[[], tuple[httpx.AsyncClient, httpx.AsyncClient]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    fast, full = pair()

    async def broken(*_args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("idp.routes.userinfo.userinfo", broken)
    answers = [observed(await http.get("/userinfo", headers={"authorization": "Bearer x.y.z"}))
               for http in (fast, full)]
    assert answers[0] == answers[1]
    assert answers[0][0] == 500
    assert b"a bug" not in answers[0][2]


@pytest.mark.parametrize("body", [
    {"sub": "ab12", "name": "Zoë Ørsted 山田", "email_verified": True, "updated_at": 1765000000,
     "consent": {"scopes": ["openid", "email"], "purposes": {"ads": False}, "none": None},
     "ratio": 0.25, "empty": {}, "list": []},
    # What orjson refuses is written by the standard library, the same way.
    {"big": 2**70, "small": -(2**64)},
    {1: "a key that is not a string"},
])
def test_the_hot_answers_json_is_byte_for_byte_the_frameworks(body: dict[Any, Any]) -> None:
    """The token, introspection and UserInfo answers are written by orjson (JSONBody): the
    same bytes as FastAPI's JSONResponse gives, whatever the values."""
    assert JSONBody(body).body == JSONResponse(body).body


def test_a_value_json_cannot_hold_is_refused_as_before() -> None:
    for response in (JSONResponse, JSONBody):
        with pytest.raises(TypeError):
            response({"x": object()})
