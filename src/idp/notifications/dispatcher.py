"""Delivers outbox messages with retries and exponential backoff, each by the sender registered
for its kind (apps: `notifications.senders`; upstream revocations: the service that writes
them).

Any number of replicas may run a dispatcher: a message is leased with a conditional update
before it is sent, so only one replica sends it at a time. Each attempt is recorded. A message
is delivered at most once per successful attempt; an app that answers 2xx is never sent the
same message again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic

import httpx
from sqlalchemy import select, update

from idp.crypto.handles import new_handle
from idp.net.fetch import PublicOnlyTransport, new_http_client
from idp.notifications.senders import Outcome, R, SenderRegistry, app_senders
from idp.observability import metrics
from idp.store.models import DeliveryAttempt, OutboxMessage

log = logging.getLogger("idp.notifications")

LEASE_SECONDS = 30
FIRST_RETRY_SECONDS = 1
MAX_RETRY_SECONDS = 300
MAX_ATTEMPTS = 20  # about 1.5 hours of retries with the backoff above


def backoff(attempts: int) -> int:
    return int(min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0)))


class Dispatcher(Generic[R]):
    """Sends with the senders `senders` builds, by message kind; a kind without one is
    abandoned. The default knows the apps' kinds only: the app wires in the rest.

    Apps' endpoints are URLs the clients supplied, so the senders' client is the SSRF-safe one
    (`idp.net.fetch`): outside dev mode (`allow_private`) only https to public addresses,
    connected to the address that was checked, no redirects, no proxy from the environment.
    `transport` (a test's) sits behind those checks, never instead of them."""

    def __init__(self, ctx: R, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None,
                 senders: SenderRegistry[R] = app_senders, allow_private: bool = False) -> None:
        self._ctx = ctx
        self._http = new_http_client(
            PublicOnlyTransport(transport, allow_private=allow_private), timeout=timeout)
        self._senders = senders(ctx, self._http)
        self.wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        """`run_forever` returns once the deliveries under way are finished and recorded."""
        self._stopping = True
        self.wake.set()

    async def close(self) -> None:
        await self._http.aclose()

    async def run_forever(self, interval: float) -> None:
        while not self._stopping:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox dispatch failed; retrying")
            if self._stopping:
                return
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
                       OutboxMessage.next_attempt_at <= now,
                       # Only kinds this dispatcher can send: a message of another kind
                       # waits for a dispatcher that can, rather than being given up.
                       OutboxMessage.kind.in_(sorted(self._senders)))
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
        sender = self._senders[message.kind]
        try:
            outcome = await sender.send(message)
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
        if "next_attempt_at" not in values:
            # Delivered or given up: the sender says what of the payload is still needed.
            kept = sender.finished_payload(message.payload)
            if kept is not None:
                values["payload"] = kept
        async with self._ctx.db.transaction() as session:
            session.add(DeliveryAttempt(
                id=new_handle(16), message_id=message.id, attempted_at=now,
                status_code=outcome.status_code, error=outcome.error))
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message.id).values(**values))
        if not outcome.delivered:
            metrics.DELIVERY_FAILURES.labels(message.client_id or "upstream").inc()
        log.info("outbox %s to %s: attempt %d %s", message.kind, _recipient(message),
                 attempts, "delivered" if outcome.delivered else (outcome.error or
                                                                  outcome.status_code))
        return outcome.delivered


def _recipient(message: OutboxMessage) -> str:
    return f"client {message.client_id}" if message.client_id else message.target_url
