"""Requests to URLs that clients supply, without letting those URLs reach inside our network:
fetching a JSON document (a `jwks_uri`, later a `request_uri` or `sector_identifier_uri`), and
delivering to an app's endpoints (back-channel logout, security events) through
`PublicOnlyTransport`.

security.md §0 item 16: https only; every address the host resolves to must be public; the
connection goes to the address that was checked (no second DNS answer can swap in another);
no redirects; no proxy from the environment; at most 2 s in total; at most 256 KiB of body.
Dev mode (`allow_private`) also permits http and private addresses, for apps running on the
developer's machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any

import httpx

from idp.net.body import BodyTooLarge, read_capped
from idp.net.tls import https_context

TIMEOUT_SECONDS = 2.0
MAX_BODY_BYTES = 256 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """A client-supplied URL could not be fetched safely; the message says why (never a body)."""


class UnsafeTarget(FetchError):
    """The URL is one we never send to (its scheme, user information, or an address that is
    not public): asking again will not change that while its DNS says the same."""


def new_http_client(transport: httpx.AsyncBaseTransport | None = None,
                    timeout: float = TIMEOUT_SECONDS) -> httpx.AsyncClient:
    """The client for client-supplied URLs. No environment proxies (they would bypass the
    address check); no kept-alive connections, because connections are made to a checked
    address and must not be reused for another host name served at that address."""
    return httpx.AsyncClient(
        transport=transport, follow_redirects=False, trust_env=False, verify=https_context(),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Accept": "application/json", "Accept-Encoding": "identity"},
    )


def is_public_address(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified
    )


async def resolve_public(host: str, port: int) -> str:
    """The first address of `host`, after checking that every address it resolves to is public.
    An IP literal is checked as it is, without asking DNS."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        if not is_public_address(literal):
            raise UnsafeTarget(f"{host} is not a public address")
        return str(literal)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise FetchError(f"cannot resolve {host}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise FetchError(f"cannot resolve {host}")
    for address in addresses:
        if not is_public_address(address):
            raise UnsafeTarget(f"{host} resolves to a non-public address")
    return str(addresses[0])


async def checked_target(url: httpx.URL, allow_private: bool) -> tuple[httpx.URL, str | None]:
    """The URL to connect to, and the host name for SNI and the certificate check (None when
    it is the URL's own): the URL itself in dev mode, otherwise the URL with its host
    replaced by the checked public address. Raises UnsafeTarget for a URL we never reach."""
    if url.scheme != "https" and not (allow_private and url.scheme == "http"):
        raise UnsafeTarget("only https URLs are fetched")
    if not url.host or url.userinfo:
        raise UnsafeTarget("the URL needs a host and no user information")
    if allow_private:
        return url, None
    host = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS see it
    address = await resolve_public(host, url.port or 443)
    return url.copy_with(host=address), host


class PublicOnlyTransport(httpx.AsyncBaseTransport):
    """Sends a request only to a URL `checked_target` allows, connected to the checked address
    while Host, SNI and the certificate check keep the name. Wraps `inner` (the network, or a
    test's transport), which never sees a request that was refused."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *,
                 allow_private: bool = False) -> None:
        # httpx's transport default, as before the context was shared: the CA bundle an
        # operator names in SSL_CERT_FILE or SSL_CERT_DIR (an app behind a private CA).
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=https_context(trust_env=True))
        self._allow_private = allow_private

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The Host header was set from the URL's name when the request was built.
        request.url, sni_hostname = await checked_target(request.url, self._allow_private)
        if sni_hostname is not None:
            request.extensions = {**request.extensions, "sni_hostname": sni_hostname}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def fetch_json(http: httpx.AsyncClient, url: str, *, allow_private: bool = False,
                     time_limit: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """GET `url` and return its JSON object. `allow_private` (dev mode only) also permits http
    and private addresses, for apps running on the developer's machine."""
    try:
        async with asyncio.timeout(time_limit):
            return await _fetch(http, url, allow_private)
    except TimeoutError:
        raise FetchError(f"no complete answer within {time_limit:g} s") from None


async def fetch_bytes(http: httpx.AsyncClient, url: str, *, accept: str, max_bytes: int,
                      allow_private: bool = False, time_limit: float = TIMEOUT_SECONDS
                      ) -> tuple[str, bytes]:
    """GET `url` under the same rules as `fetch_json`; returns the Content-Type and the body
    (at most `max_bytes`). Used for profile pictures copied from an upstream (federation.md
    §9 requirement 37)."""
    try:
        async with asyncio.timeout(time_limit):
            return await _get(http, url, allow_private, accept, max_bytes)
    except TimeoutError:
        raise FetchError(f"no complete answer within {time_limit:g} s") from None


async def _fetch(http: httpx.AsyncClient, url: str, allow_private: bool) -> dict[str, Any]:
    _, body = await _get(http, url, allow_private, "application/json", MAX_BODY_BYTES)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise FetchError("the body is not a JSON object")
    return document


async def _get(http: httpx.AsyncClient, url: str, allow_private: bool, accept: str,
               max_bytes: int) -> tuple[str, bytes]:
    try:
        named = httpx.URL(url)
    except httpx.InvalidURL:
        raise FetchError("not a valid URL") from None
    target, sni_hostname = await checked_target(named, allow_private)
    headers = {"Accept": accept}
    extensions: dict[str, Any] = {}
    if sni_hostname is not None:
        # Connect to the checked address; keep the name for Host, SNI and the certificate check.
        headers["Host"] = named.netloc.decode("ascii")
        extensions["sni_hostname"] = sni_hostname
    try:
        async with http.stream("GET", target, headers=headers, extensions=extensions) as response:
            if response.is_redirect:
                raise FetchError(f"redirects are not followed (status {response.status_code})")
            if response.status_code != 200:
                raise FetchError(f"status {response.status_code}")
            body = await _read_capped(response, max_bytes)
            content_type = response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise FetchError(f"request failed ({type(exc).__name__})") from None
    return content_type, body


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    # Identity only (we asked for it), so a compressed body cannot expand past the cap in one
    # chunk: the bytes counted are the bytes received.
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        raise FetchError("compressed bodies are not accepted")
    try:
        return await read_capped(response, max_bytes)
    except BodyTooLarge as exc:
        raise FetchError(str(exc)) from None
