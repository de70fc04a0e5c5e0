"""Talking to upstreams: one shared `httpx.AsyncClient` with explicit timeouts, capped JSON
bodies, and `Cache-Control` read so key sets and metadata are cached as the upstream asks.

Requirement 13: Graph API calls carry tokens in the query string, and httpx logs every
request URL at INFO; `new_upstream_client` therefore installs a filter that strips queries from
httpx's request log lines.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from idp.federation.errors import UpstreamUnavailable
from idp.net.body import BodyTooLarge, read_capped
from idp.net.tls import https_context

TIMEOUT = httpx.Timeout(5.0, connect=3.0)
MAX_BODY_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class _RedactQuery(logging.Filter):
    """Replaces the query of any URL in httpx's log arguments; the record is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=b"redacted") if isinstance(arg, httpx.URL) and arg.query
                else arg
                for arg in record.args
            )
        return True


def install_log_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())


def new_upstream_client(transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The client for upstream calls. No redirects (endpoints are configured exactly); no
    environment proxies, so an injected transport is the one used."""
    install_log_redaction()
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, timeout=TIMEOUT,
        verify=https_context(),
        headers={"Accept": "application/json"},
    )


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: dict[str, Any]
    max_age: int | None  # seconds from Cache-Control; 0 for no-store / no-cache

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def cache_max_age(header: str | None) -> int | None:
    if not header:
        return None
    if _NO_CACHE.search(header):
        return 0
    match = _MAX_AGE.search(header)
    return int(match.group(1)) if match else None


async def request_json(http: httpx.AsyncClient, method: str, url: str, *,
                       params: Mapping[str, str] | None = None,
                       data: Mapping[str, str] | None = None,
                       headers: Mapping[str, str] | None = None,
                       allow_empty: bool = False) -> JsonResponse:
    """One request whose answer must be a JSON object (or empty when `allow_empty`)."""
    try:
        async with http.stream(method, url, params=params, data=data,
                               headers=headers) as response:
            body = await _read_capped(response)
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"request failed ({type(exc).__name__})") from None
    document: Any = {}
    if body.strip():
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
    elif not allow_empty and response.is_success:
        document = None
    if not isinstance(document, dict):
        raise UpstreamUnavailable(f"status {response.status_code} without a JSON object")
    return JsonResponse(response.status_code, document,
                        cache_max_age(response.headers.get("cache-control")))


async def _read_capped(response: httpx.Response) -> bytes:
    try:
        return await read_capped(response, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        raise UpstreamUnavailable(str(exc)) from None
