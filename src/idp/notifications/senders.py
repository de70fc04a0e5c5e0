"""Senders by message kind: what the dispatcher calls to deliver one outbox message, and the
ones for apps, which sign with our key ring and POST to the URI the app registered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from idp.crypto.keys import KeyRing
from idp.net.fetch import FetchError, UnsafeTarget
from idp.notifications.outbox import BACKCHANNEL_LOGOUT, SECURITY_EVENT
from idp.store.db import Database
from idp.store.models import OutboxMessage

LOGOUT_TOKEN_TTL = 120


class KeySource(Protocol):
    async def ring(self) -> KeyRing: ...


class Runtime(Protocol):
    """What the outbox needs of the running service: its database, its signing keys and its
    clock. The services' `Context` is one; this layer never imports the services."""

    @property
    def db(self) -> Database: ...

    @property
    def keys(self) -> KeySource: ...

    def now(self) -> int: ...


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool
    status_code: int | None
    error: str | None


class Sender(Protocol):
    async def send(self, message: OutboxMessage) -> Outcome:
        """One delivery attempt. An exception counts as a failure worth retrying."""
        ...

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """What of the payload to keep once the message is delivered or abandoned; None keeps
        it as it is."""
        ...


# Built by the dispatcher with its own HTTP client (its timeout, a test's transport), over the
# runtime the dispatcher was given (the services hand in their Context).
R = TypeVar("R", bound=Runtime)
SenderRegistry = Callable[[R, httpx.AsyncClient], Mapping[str, Sender]]


@dataclass(frozen=True)
class BackchannelLogoutSender:
    ctx: Runtime
    http: httpx.AsyncClient

    async def send(self, message: OutboxMessage) -> Outcome:
        now = self.ctx.now()
        ring = await self.ctx.keys.ring()
        claims = {**message.payload["claims"], "iat": now, "exp": now + LOGOUT_TOKEN_TTL}
        # Back-Channel Logout §2.4: explicitly typed, and never a nonce.
        token = ring.sign(claims, alg=message.payload.get("alg", "RS256"), typ="logout+jwt")
        return await post_to_app(self.http, message.target_url, data={"logout_token": token},
                                 headers={"Cache-Control": "no-store"})

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True)
class SecurityEventSender:
    ctx: Runtime
    http: httpx.AsyncClient

    async def send(self, message: OutboxMessage) -> Outcome:
        now = self.ctx.now()
        ring = await self.ctx.keys.ring()
        # RFC 8417 §2.3 explicit typing; RFC 8935 §2: the SET is the request body.
        token = ring.sign({**message.payload["claims"], "iat": now},
                          alg=message.payload.get("alg", "RS256"), typ="secevent+jwt")
        return await post_to_app(self.http, message.target_url, content=token, headers={
            "Content-Type": "application/secevent+jwt", "Accept": "application/json"})

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        return None


def app_senders(ctx: Runtime, http: httpx.AsyncClient) -> dict[str, Sender]:
    return {BACKCHANNEL_LOGOUT: BackchannelLogoutSender(ctx, http),
            SECURITY_EVENT: SecurityEventSender(ctx, http)}


async def post_to_app(http: httpx.AsyncClient, url: str, **request: Any) -> Outcome:
    try:
        response = await http.post(url, **request)
    except UnsafeTarget as exc:
        # security.md §0 item 16: nothing was sent; the same URL would be refused again.
        return Outcome(False, False, None, f"refused: {exc}"[:200])
    except FetchError as exc:  # the name did not resolve: perhaps it will later
        return Outcome(False, True, None, str(exc)[:200])
    except httpx.HTTPError as exc:
        return Outcome(False, True, None, type(exc).__name__)
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, False, status, None)
    # Back-Channel Logout §2.8: 400 means the app rejected the token; retrying will not
    # change that.
    retry = status >= 500 or status in (408, 425, 429)
    return Outcome(False, retry, status, f"HTTP {status}")
