"""Writing messages for apps into the outbox, inside the caller's unit of work (upstream
revocations: `services.upstream_revocation_sender`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.domain import ClientConfig
from idp.store.models import DeliveryAttempt, OutboxMessage

BACKCHANNEL_LOGOUT = "backchannel_logout"
# OIDC Back-Channel Logout 1.0 §2.4
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def enqueue(session: AsyncSession, kind: str, client_id: str | None, target_url: str,
            payload: dict[str, Any], now: int, change_id: str | None = None) -> str:
    message_id = new_handle(16)
    session.add(
        OutboxMessage(
            id=message_id, kind=kind, client_id=client_id, target_url=target_url,
            payload=payload, created_at=now, next_attempt_at=now, attempts=0,
            locked_until=None, delivered_at=None, abandoned_at=None, change_id=change_id,
        )
    )
    return message_id


def enqueue_backchannel_logout(session: AsyncSession, client: ClientConfig, issuer: str,
                               sub: str, sid: str, now: int,
                               change_id: str | None = None) -> str | None:
    """A logout token for `client`, if it registered a back-channel logout URI. The claims are
    fixed now (one `jti` for every delivery attempt, so the app can de-duplicate); `iat` and
    `exp` are set when it is signed at delivery."""
    if not client.backchannel_logout_uri:
        return None
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client.client_id,
        "sub": sub,
        "jti": new_handle(16),
        "events": {LOGOUT_EVENT: {}},
    }
    # §2.4: sid is included when the client asked for it (and is harmless otherwise).
    claims["sid"] = sid
    return enqueue(session, BACKCHANNEL_LOGOUT, client.client_id, client.backchannel_logout_uri,
                   {"claims": claims, "alg": client.id_token_signed_response_alg}, now,
                   change_id)


SECURITY_EVENT = "security_event"
# OpenID CAEP 1.0 event types.
CLAIMS_CHANGE_EVENT = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
SESSION_REVOKED_EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def enqueue_security_event(session: AsyncSession, client: ClientConfig, issuer: str, sub: str,
                           event_type: str, event: dict[str, Any], now: int,
                           change_id: str | None = None) -> str | None:
    """A Security Event Token (RFC 8417) for the app's push endpoint (RFC 8935), if it
    registered one. Subject per RFC 9493 (`iss_sub`); `txn` ties it to the ledger entry."""
    if not client.event_uri:
        return None
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client.client_id,
        "jti": new_handle(16),
        "sub_id": {"format": "iss_sub", "iss": issuer, "sub": sub},
        "events": {event_type: {"event_timestamp": now, **event}},
    }
    if change_id is not None:
        claims["txn"] = change_id
    return enqueue(session, SECURITY_EVENT, client.client_id, client.event_uri,
                   {"claims": claims, "alg": client.id_token_signed_response_alg}, now,
                   change_id)


@dataclass(frozen=True)
class Undelivered:
    """A message that has not got through: `abandoned`, or `retrying` after failed attempts.
    Carries no payload (it may hold a sealed token, a customer id, an ASID)."""

    id: str
    kind: str
    recipient: str  # the client id, or `upstream:<alias>`
    status: str
    attempts: int
    last_error: str | None
    created_at: int
    next_attempt_at: int | None
    abandoned_at: int | None


async def undelivered(session: AsyncSession, kind: str | None = None) -> list[Undelivered]:
    """For operators: what failed, oldest first (federation.md §9 requirement 31: upstream
    revocation failures are retried and reported)."""
    query = select(OutboxMessage).where(
        OutboxMessage.delivered_at.is_(None),
        OutboxMessage.abandoned_at.is_not(None) | (OutboxMessage.attempts > 0))
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    found = []
    for message in await session.scalars(query.order_by(OutboxMessage.created_at)):
        last = await session.scalar(
            select(DeliveryAttempt.error).where(DeliveryAttempt.message_id == message.id)
            .order_by(DeliveryAttempt.attempted_at.desc()).limit(1))
        abandoned = message.abandoned_at is not None
        found.append(Undelivered(
            id=message.id, kind=message.kind, recipient=message.client_id or message.target_url,
            status="abandoned" if abandoned else "retrying", attempts=message.attempts,
            last_error=last, created_at=message.created_at,
            next_attempt_at=None if abandoned else message.next_attempt_at,
            abandoned_at=message.abandoned_at))
    return found
