"""Delivers outbox messages to apps (and revocations to upstream providers) with retries and
exponential backoff.

Any number of replicas may run a dispatcher: a message is leased with a conditional update
before it is sent, so only one replica sends it at a time. Each attempt is recorded. A message
is delivered at most once per successful attempt; an app that answers 2xx is never sent the
same message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from idp.crypto.handles import new_handle
from idp.federation.errors import (
    InvalidUpstreamToken,
    TokenRequestFailed,
    UpstreamUnavailable,
)
from idp.federation.facebook import FacebookUpstream
from idp.notifications.outbox import BACKCHANNEL_LOGOUT, SECURITY_EVENT, UPSTREAM_REVOKE
from idp.services.context import Context
from idp.services.upstream_tokens import unseal
from idp.services.upstreams import upstream_client
from idp.store.models import DeliveryAttempt, OutboxMessage

log = logging.getLogger("idp.notifications")

LEASE_SECONDS = 30
FIRST_RETRY_SECONDS = 1
MAX_RETRY_SECONDS = 300
MAX_ATTEMPTS = 20  # about 1.5 hours of retries with the backoff above
LOGOUT_TOKEN_TTL = 120
# RFC 7009 §2.2 / RFC 6749 §5.2 answers meaning the token is dead already: nothing to revoke.
ALREADY_INVALID = frozenset({"invalid_token", "invalid_grant"})
# Answers that will not change by asking again.
REFUSED = frozenset({"invalid_request", "unsupported_token_type"})


def backoff(attempts: int) -> int:
    return int(min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0)))


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retry: bool
    status_code: int | None
    error: str | None


class Dispatcher:
    def __init__(self, ctx: Context, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._ctx = ctx
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                       transport=transport)
        self.wake = asyncio.Event()

    async def close(self) -> None:
        await self._http.aclose()

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=interval)
            self.wake.clear()

    async def run_once(self, limit: int = 50) -> int:
        """Send every due message once; returns how many were delivered."""
        messages = await self._lease(limit)
        results = await asyncio.gather(*(self._deliver(m) for m in messages))
        return sum(1 for delivered in results if delivered)

    async def _lease(self, limit: int) -> list[OutboxMessage]:
        now = self._ctx.now()
        leased: list[OutboxMessage] = []
        async with self._ctx.db.transaction() as session:
            due = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None),
                       OutboxMessage.abandoned_at.is_(None),
                       OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at)
                .limit(limit)
            )
            for message in list(due):
                if message.locked_until is not None and message.locked_until > now:
                    continue
                result = await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message.id,
                           OutboxMessage.delivered_at.is_(None),
                           (OutboxMessage.locked_until.is_(None))
                           | (OutboxMessage.locked_until <= now))
                    .values(locked_until=now + LEASE_SECONDS)
                )
                if getattr(result, "rowcount", 0) == 1:
                    leased.append(message)
        return leased

    async def _deliver(self, message: OutboxMessage) -> bool:
        try:
            outcome = await self._send(message)
        except Exception as exc:
            outcome = Outcome(False, True, None, type(exc).__name__)
        now = self._ctx.now()
        attempts = message.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "locked_until": None}
        if outcome.delivered:
            values["delivered_at"] = now
        elif outcome.retry and attempts < MAX_ATTEMPTS:
            values["next_attempt_at"] = now + backoff(attempts)
        else:
            values["abandoned_at"] = now
        if message.kind == UPSTREAM_REVOKE and "next_attempt_at" not in values:
            # Delivered or given up: the sealed token or the deleted customer's ASID is of no
            # further use (PRIV-01); the alias, type and attempts stay for the report.
            values["payload"] = {k: message.payload.get(k) for k in ("alias", "type")}
        async with self._ctx.db.transaction() as session:
            session.add(DeliveryAttempt(
                id=new_handle(16), message_id=message.id, attempted_at=now,
                status_code=outcome.status_code, error=outcome.error))
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values))
        log.info("outbox %s to %s: attempt %d %s", message.kind, _recipient(message),
                 attempts, "delivered" if outcome.delivered else (outcome.error or
                                                                  outcome.status_code))
        return outcome.delivered

    async def _send(self, message: OutboxMessage) -> Outcome:
        if message.kind == UPSTREAM_REVOKE:
            return await self._revoke_upstream(message.payload)
        now = self._ctx.now()
        ring = await self._ctx.keys.ring()
        alg = message.payload.get("alg", "RS256")
        request: dict[str, Any]
        if message.kind == BACKCHANNEL_LOGOUT:
            claims = {**message.payload["claims"], "iat": now, "exp": now + LOGOUT_TOKEN_TTL}
            # Back-Channel Logout §2.4: explicitly typed, and never a nonce.
            token = ring.sign(claims, alg=alg, typ="logout+jwt")
            request = {"data": {"logout_token": token}, "headers": {"Cache-Control": "no-store"}}
        elif message.kind == SECURITY_EVENT:
            # RFC 8417 §2.3 explicit typing; RFC 8935 §2: the SET is the request body.
            token = ring.sign({**message.payload["claims"], "iat": now}, alg=alg,
                              typ="secevent+jwt")
            request = {"content": token, "headers": {
                "Content-Type": "application/secevent+jwt", "Accept": "application/json"}}
        else:
            return Outcome(False, False, None, f"unknown kind {message.kind}")
        try:
            response = await self._http.post(message.target_url, **request)
        except httpx.HTTPError as exc:
            return Outcome(False, True, None, type(exc).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(True, False, status, None)
        # §2.8: 400 means the app rejected the token; retrying will not change that.
        retry = status >= 500 or status in (408, 425, 429)
        return Outcome(False, retry, status, f"HTTP {status}")

    async def _revoke_upstream(self, payload: dict[str, Any]) -> Outcome:
        """Federation.md §9 requirement 31: Apple `/auth/revoke` or Google `/revoke` (RFC 7009)
        with the kept token, Facebook `DELETE /{asid}/permissions` with our app token. An
        upstream that is no longer configured cannot be asked: abandoned, and reported."""
        alias = str(payload.get("alias", ""))
        client = await upstream_client(self._ctx, alias)
        if client is None:
            return Outcome(False, False, None, "upstream no longer configured")
        try:
            if payload.get("asid") is not None:
                if not isinstance(client, FacebookUpstream):
                    return Outcome(False, False, None, "upstream is no longer Facebook")
                await client.revoke_permissions(str(payload["asid"]))
            else:
                if (await client.metadata()).revocation_endpoint is None:
                    return Outcome(False, False, None, "upstream has no revocation endpoint")
                token = unseal(self._ctx, str(payload["sealed_token"]))
                await client.revoke(token.token, token.type)
        except TokenRequestFailed as exc:
            log.warning("upstream revocation at %s refused: %s", alias, exc.error)
            if exc.error in ALREADY_INVALID:
                return Outcome(True, False, None, f"already invalid ({exc.error})")
            return Outcome(False, exc.error not in REFUSED, None, exc.error)
        except (UpstreamUnavailable, InvalidUpstreamToken, ValueError) as exc:
            # Messages are fixed phrases without tokens (federation/errors.py).
            reason = exc.reason if isinstance(exc, UpstreamUnavailable | InvalidUpstreamToken) \
                else "invalid app-scoped user id"
            log.warning("upstream revocation at %s failed: %s", alias, reason)
            return Outcome(False, isinstance(exc, UpstreamUnavailable), None, reason[:200])
        return Outcome(True, False, None, None)


def _recipient(message: OutboxMessage) -> str:
    return f"client {message.client_id}" if message.client_id else message.target_url
