"""What every fake upstream shares: a clock, rotatable signing keys, a request log, routing,
and a scripted user agent that follows an authorization URL to the callback parameters."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

# RSA generation costs ~60 ms; keys are shared across tests, each with a fixed kid.
_RSA_POOL: list[RSAKey] = []


def pooled_rsa_key(index: int) -> RSAKey:
    while len(_RSA_POOL) <= index:
        key = RSAKey.generate_key(2048, private=True)
        _RSA_POOL.append(RSAKey.import_key(
            {**key.as_dict(private=True), "kid": f"fake-{len(_RSA_POOL)}", "alg": "RS256",
             "use": "sig"}))
    return _RSA_POOL[index]


class Clock:
    """Injected time shared by a fake and the client under test."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


class SigningKeys:
    """The upstream's published RSA keys; `rotate` adds one and signs with it from then on."""

    def __init__(self, count: int = 1) -> None:
        self._next = 0
        self.published: list[RSAKey] = []
        self.extra: list[dict[str, Any]] = []  # other public JWKs to publish (EC keys)
        for _ in range(count):
            self.rotate()

    @property
    def current(self) -> RSAKey:
        return self.published[-1]

    def rotate(self) -> RSAKey:
        key = pooled_rsa_key(self._next)
        self._next += 1
        self.published.append(key)
        return key

    def drop_old(self) -> None:
        self.published = [self.current]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published] + self.extra}

    def sign(self, claims: dict[str, Any], *, key: RSAKey | None = None,
             header: dict[str, Any] | None = None) -> str:
        signer = key or self.current
        return jwt.encode({"alg": "RS256", "kid": signer.kid, **(header or {})}, claims, signer,
                          algorithms=["RS256"])


def unsigned_jwt(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An `alg: none` token, for the refusal tests."""
    return ".".join([b64(json.dumps(header or {"alg": "none"}).encode()),
                     b64(json.dumps(claims).encode()), ""])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return b64(digest[:16])


def s256(verifier: str) -> str:
    return b64(hashlib.sha256(verifier.encode()).digest())


def new_secret() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class RequestLog:
    entries: list[Recorded] = field(default_factory=list)

    def record(self, request: httpx.Request) -> Recorded:
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        entry = Recorded(request.method, request.url.path, dict(request.url.params), form,
                         dict(request.headers))
        self.entries.append(entry)
        return entry

    def calls(self, path_pattern: str, method: str | None = None) -> list[Recorded]:
        pattern = re.compile(path_pattern)
        return [e for e in self.entries
                if pattern.fullmatch(e.path) and (method is None or e.method == method)]


Handler = Callable[[httpx.Request, Recorded, re.Match[str]], httpx.Response]


class FakeServer:
    """Routes requests by method and path regex; every request is logged first."""

    host: str

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).hostname or ""
        self.log = RequestLog()
        self.issued: list[str] = []  # every code and token handed out, for log greps
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(path), handler))

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def handle(self, request: httpx.Request) -> httpx.Response:
        entry = self.log.record(request)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.url.path)
            if match and method == request.method:
                return handler(request, entry, match)
        return json_response({"error": "not_found"}, 404)


def transport(*servers: FakeServer) -> httpx.MockTransport:
    """One transport serving several fakes, chosen by host name."""
    by_host = {server.host: server for server in servers}

    def handle(request: httpx.Request) -> httpx.Response:
        server = by_host.get(request.url.host)
        if server is None:
            return httpx.Response(502, json={"error": "no fake for this host"})
        return server.handle(request)

    return httpx.MockTransport(handle)


def json_response(body: dict[str, Any], status: int = 200, *,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def redirect(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"Location": location})


def form_or_query(request: httpx.Request, entry: Recorded) -> dict[str, str]:
    return entry.form if request.method == "POST" else entry.params


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action")
        if tag == "input" and values.get("name") is not None:
            self.fields.append((str(values["name"]), values.get("value") or ""))


async def user_agent(http: httpx.AsyncClient, url: str) -> list[tuple[str, str]]:
    """Follows an authorization URL as the browser would and returns what reaches our
    callback: the redirect's query (duplicates kept), or the fields of a form_post page."""
    response = await http.get(url)
    if response.status_code in (302, 303):
        location = urlsplit(response.headers["location"])
        return parse_qsl(location.query, keep_blank_values=True)
    if response.status_code == 200 and "text/html" in response.headers.get("content-type", ""):
        parser = _Inputs()
        parser.feed(response.text)
        return parser.fields
    raise AssertionError(f"authorization answered {response.status_code}: {response.text}")
