"""Writing messages for apps into the outbox, inside the caller's unit of work."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.domain import ClientConfig
from idp.store.models import OutboxMessage

BACKCHANNEL_LOGOUT = "backchannel_logout"
# OIDC Back-Channel Logout 1.0 §2.4
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def enqueue(session: AsyncSession, kind: str, client_id: str, target_url: str,
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
