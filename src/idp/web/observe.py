"""Each request's id, its place in the metrics and its line in the access log."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.observability import metrics
from idp.observability.logs import request_id, request_id_from

access_log = logging.getLogger("idp.access")

# Methods are labels: anything a client makes up is counted as one.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestObserver:
    """Gives the request an id (kept from a proxy's `X-Request-ID` when it is a plain token)
    that every log line written for it carries and the response returns; counts it and its
    latency by route template (never by path: paths are unbounded and may hold identifiers);
    and logs method, path, status and time. Never the query string: it can hold codes and
    tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled series each (method, route, status) counts into, looked up once:
        # `labels()` checks and joins its values on every call, 5 % of a UserInfo request.
        # Bounded: methods and statuses are a fixed few, routes are the app's templates.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        inbound = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                inbound = value.decode("latin-1")
                break
        rid = request_id_from(inbound)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            series = self._series.get((method, route, status))
            if series is None:
                series = self._series[(method, route, status)] = (
                    metrics.REQUESTS.labels(method, route, str(status)),
                    metrics.LATENCY.labels(method, route))
            series[0].inc()
            series[1].observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                path = _loggable(scope["path"])
                access_log.info("%s %s %s %.1fms", scope["method"], path, status,
                                elapsed * 1000, extra={
                                    "method": method, "route": route, "path": path,
                                    "status": status,
                                    "duration_ms": round(elapsed * 1000, 1)})
            request_id.reset(token)


def _loggable(path: str) -> str:
    """The path, without the confirmation code of a data-deletion status page (req 13)."""
    head, marker, _ = path.partition("/deletion/")
    return f"{head}{marker}…" if marker and head.startswith("/federation/") else path
