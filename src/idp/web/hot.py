"""The protocol endpoints every app calls all day, answered without FastAPI's per-request
layers.

UserInfo, introspection, the token endpoint, revocation, the JWKS and discovery take no
path, query or body parameters that FastAPI would validate: each is `async def
endpoint(request, ctx)`, reads what it needs itself, and answers with a ready `Response`.
For them FastAPI's exception middleware, its AsyncExitStack, the router's linear match over
every route, the route's dependency solving and its response wrapping were a fifth of a
UserInfo request's CPU (bench/profile_paths.py), none of it doing anything. `HotRoutes` sits
innermost among the app's middlewares and calls those endpoints directly, with the
exception handlers the app installed (`idp.web.errors`), so every answer, error or not, is
byte for byte what the full stack gives; the routes stay FastAPI routes, so the OpenAPI
document, the metrics' route label and every other request are unchanged.

One page is answered the same way: the login page's password post, the request a password
sign-in's CPU is measured by (issue 10: at most 1.2 times the hash it waits for). Its path
holds the interaction's id, and it takes the browser's cookie settings (`BrowserCookies`,
the app's own) besides the request and the context; FastAPI's layers were some 0.4 ms of its
CPU. It still passes the page's language middleware (idp.web.i18n), which sits outside.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

HOT_PATHS = frozenset({
    "/token", "/introspect", "/revoke", "/userinfo", "/jwks",
    "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
})
# Hot routes whose paths hold parameters (strings, as FastAPI would give them), by method.
HOT_TEMPLATES = frozenset({("POST", "/interaction/{interaction_id}/login")})
# What a hot endpoint may ask for besides its path's parameters: the request, the service
# context, and the browser's cookie settings (as `idp.web.deps` and `idp.web.browser` give).
_ARGUMENTS = frozenset({"request", "ctx", "cookies"})

Endpoint = Callable[..., Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class HotRoutes:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        # Built with the middleware stack, on the app's first request: every route is there.
        self.app, self.owner = app, owner
        self.table = _hot_table(owner, HOT_PATHS)
        self.templates = _hot_templates(owner, HOT_TEMPLATES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        hit, params = self.table.get((method, path)), {}
        if hit is None:
            for template_method, pattern, entry in self.templates:
                matched = pattern.match(path) if template_method == method else None
                if matched is not None:
                    hit, params = entry, matched.groupdict()
                    break
            else:
                await self.app(scope, receive, send)
                return
        route, endpoint, names = hit
        # What the router would have set: the route (the metrics label it), its endpoint.
        scope["route"], scope["endpoint"], scope["path_params"] = route, endpoint, params
        request = Request(scope, receive, send)
        state = self.owner.state
        given: dict[str, Any] = {"request": request, "ctx": state.ctx,
                                 "cookies": state.cookies, **params}
        try:
            response = await endpoint(**{name: given[name] for name in names})
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # to the server error middleware, as from any other route
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        """The app's handler for `exc`, looked up along its class hierarchy as Starlette's
        exception middleware does."""
        handlers = self.owner.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:
                handler: Handler = handlers[cls]  # type: ignore[assignment]
                return handler
        return None


def _hot_table(owner: FastAPI, paths: frozenset[str]
               ) -> dict[tuple[str, str], tuple[APIRoute, Endpoint, tuple[str, ...]]]:
    """(method, path) -> the route, its endpoint and the arguments it takes."""
    table = {}
    for route, path, depends in _routes(owner.routes, "", False):
        if path not in paths:
            continue
        names = tuple(inspect.signature(route.endpoint).parameters)
        if depends or route.path != path or not set(names) <= _ARGUMENTS:
            raise TypeError(f"hot route {path} takes parameters or dependencies "
                            "that FastAPI must solve, so it cannot be a hot route")
        for method in route.methods or ():
            table[(method, path)] = (route, route.endpoint, names)
    missing = paths - {path for _, path in table}
    if missing:
        raise LookupError(f"hot routes not found: {sorted(missing)}")
    return table


def _hot_templates(owner: FastAPI, templates: frozenset[tuple[str, str]]
                   ) -> list[tuple[str, re.Pattern[str], tuple[APIRoute, Endpoint,
                                                             tuple[str, ...]]]]:
    """(method, the path's pattern, (the route, its endpoint, the arguments it takes)) for
    each of `templates`, whose parameters must all be plain strings."""
    found, seen = [], set()
    for route, path, depends in _routes(owner.routes, "", False):
        for method in sorted(route.methods or ()):
            if (method, path) not in templates:
                continue
            pattern, _, convertors = compile_path(path)
            names = tuple(inspect.signature(route.endpoint).parameters)
            if depends or not set(names) <= _ARGUMENTS | set(convertors) or any(
                    not isinstance(c, StringConvertor) for c in convertors.values()):
                raise TypeError(f"hot route {method} {path} takes parameters or dependencies "
                                "that FastAPI must solve, so it cannot be a hot route")
            found.append((method, pattern, (route, route.endpoint, names)))
            seen.add((method, path))
    if templates - seen:
        raise LookupError(f"hot routes not found: {sorted(templates - seen)}")
    return found


def _routes(routes: Iterable[BaseRoute], prefix: str, depends: bool
            ) -> Iterator[tuple[APIRoute, str, bool]]:
    """Every API route with its full path and whether any dependency applies to it. Recent
    FastAPI keeps an included router as one entry (its router and the include's prefix and
    dependencies) instead of copying its routes into the app's list."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, prefix + route.path, depends or bool(route.dependencies)
            continue
        included = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        if included is not None and context is not None:
            yield from _routes(included.routes, prefix + context.prefix,
                               depends or bool(context.dependencies))
