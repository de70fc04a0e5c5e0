"""The client address of each request, for throttling (security.md ATO-02, ATO-04)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from idp.services.throttle import client_address, request_source


class ClientSource:
    """Sets `request_source` for the request: the peer address, or the client named by
    X-Forwarded-For when, and only when, the peer is one of `trusted_proxies`."""

    def __init__(self, app: ASGIApp, trusted_proxies: tuple[str, ...]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        forwarded = [value.decode("latin-1") for name, value in scope.get("headers", [])
                     if name == b"x-forwarded-for"] if self.trusted_proxies else []
        token = request_source.set(
            client_address(peer[0] if peer else None, forwarded, self.trusted_proxies))
        try:
            await self.app(scope, receive, send)
        finally:
            request_source.reset(token)
