"""The client address of each request and its device cookie, for throttling (security.md
ATO-01, ATO-02, ATO-04), and its User-Agent, which names a new session's device."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp.services.signin.devices import (
    DEVICE_COOKIE_DAYS,
    DeviceCookie,
    parse,
    request_devices,
)
from idp.services.signin.session_devices import request_agent
from idp.services.signin.throttle import request_source
from idp.services.signin.user_agents import MAX_AGENT_LENGTH
from idp.web.browser import BrowserCookies

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientSource:
    """Sets `request_source` for the request: the peer address, or the client named by
    X-Forwarded-For when, and only when, the peer is one of `trusted_proxies`; and
    `request_devices` from the device cookie, writing back the one a sign-in issued."""

    def __init__(self, app: ASGIApp, trusted_proxies: tuple[str, ...],
                 cookies: BrowserCookies) -> None:
        self.app = app
        self.networks = proxy_networks(trusted_proxies)
        self.cookies = cookies
        self.device_cookie = cookies.settings.device_cookie_name  # not derived per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        headers = scope.get("headers", [])
        forwarded = [value.decode("latin-1") for name, value in headers
                     if name == b"x-forwarded-for"] if self.networks else []
        token = request_source.set(
            client_address(peer[0] if peer else None, forwarded, self.networks))
        devices = DeviceCookie(parse(_cookie(headers, self.device_cookie)))
        devices_token = request_devices.set(devices)
        agent_token = request_agent.set(_agent(headers))

        async def send_device_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and devices.issued is not None:
                issued = self.cookies.device_cookie_header(devices.issued,
                                                           DEVICE_COOKIE_DAYS * 86_400)
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", issued)]}
            await send(message)

        try:
            await self.app(scope, receive, send_device_cookie)
        finally:
            request_agent.reset(agent_token)
            request_devices.reset(devices_token)
            request_source.reset(token)



def _agent(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The User-Agent, cut to what the device name is read from (nothing is decoded past it:
    an oversized header costs nothing more)."""
    for header, value in headers:
        if header == b"user-agent":
            return value[:MAX_AGENT_LENGTH].decode("latin-1")
    return None


def _cookie(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    for header, value in headers:
        if header == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(name)
            if found is not None:
                return found
    return None


def proxy_networks(trusted_proxies: Iterable[str]) -> tuple[Network, ...]:
    """The `trusted_proxies` setting, which its validator already checked, as networks."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies)


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted_proxies: Sequence[Network]) -> str | None:
    """ATO-04 / RFC 9700 §4.13: X-Forwarded-For is believed only from a trusted proxy, read
    right to left, and the first hop that is not a trusted proxy is the client. A malformed
    entry stops the walk at the last trusted hop; it never skips the policy."""

    def trusted(address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in trusted_proxies)

    client = peer
    if not trusted_proxies or not trusted(peer):
        return client
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not trusted(hop):
            return client
    return client
