"""Apple server-to-server notifications, verification part (federation.md §2.7,
requirement 27).

The body is JSON `{"payload": "<JWS>"}`, signed with Apple's keys (RS256, `/auth/keys`), with
`iss=https://appleid.apple.com`, `aud` one of our client ids, `iat`, `jti`, and `events` - a
JSON-encoded *string* that is decoded a second time. Notifications record past events, so no
`exp` is required; de-duplicating by `jti` is the caller's (it needs storage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from idp.federation.claims import normalise_bool, optional_str
from idp.federation.errors import FederationError, InvalidNotification
from idp.federation.idtoken import KeyLookup, check_audience, verify_signature

KNOWN_TYPES = frozenset({"email-disabled", "email-enabled", "consent-revoked", "account-delete"})
MAX_BODY_BYTES = 16 * 1024


@dataclass(frozen=True)
class AppleEvent:
    type: str
    sub: str
    aud: str
    jti: str | None
    event_time_ms: int | None  # Apple sends milliseconds
    email: str | None = None
    is_private_email: bool = False

    @property
    def known(self) -> bool:
        """Unknown types are answered 2xx and ignored (federation.md §2.7)."""
        return self.type in KNOWN_TYPES


async def verify_notification(body: bytes | str, *, issuer: str, audiences: frozenset[str],
                              key_for: KeyLookup) -> AppleEvent:
    payload = _payload(body)
    try:
        claims = await verify_signature(payload, ("RS256",), key_for)
        check_audience(claims, audiences)
    except FederationError as exc:
        raise InvalidNotification(f"notification refused: {exc.reason}") from None
    if claims.get("iss") != issuer:
        raise InvalidNotification("the notification's iss is not Apple's")
    events = claims.get("events")
    if isinstance(events, str):
        try:
            events = json.loads(events)
        except ValueError:
            raise InvalidNotification("the notification's events are not JSON") from None
    if not isinstance(events, dict):
        raise InvalidNotification("the notification has no events object")
    kind, sub = optional_str(events.get("type")), optional_str(events.get("sub"))
    if kind is None or sub is None:
        raise InvalidNotification("the notification's event lacks type or sub")
    aud = claims["aud"]
    event_time = events.get("event_time")
    return AppleEvent(
        type=kind, sub=sub, aud=aud if isinstance(aud, str) else sorted(audiences & set(aud))[0],
        jti=optional_str(claims.get("jti")),
        event_time_ms=event_time if isinstance(event_time, int) else None,
        email=optional_str(events.get("email")),
        is_private_email=normalise_bool(events.get("is_private_email")),
    )


def _payload(body: bytes | str) -> str:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidNotification("the notification body is too large")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeError):
        raise InvalidNotification("the notification body is not JSON") from None
    payload = document.get("payload") if isinstance(document, dict) else None
    if not isinstance(payload, str):
        raise InvalidNotification("the notification body has no payload")
    return payload
