"""Account security events: what happened to an account's sign-in methods, kept for the
customer's account center and for operators. Written in the caller's unit of work, so an event
is recorded exactly when the change it describes commits. Never holds secrets or tokens."""

from __future__ import annotations

import itertools
import time
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.store.models import SecurityEvent
from idp.store.prepared import Connection, inserting_rows

# Kinds, so callers and readers agree on the spelling.
IDENTITY_LINKED = "identity_linked"
IDENTITY_UNLINKED = "identity_unlinked"
IDENTITY_RELINKED = "identity_relinked"
# federation.md §9 requirement 17: same email (and hd), different upstream subject.
UPSTREAM_SUBJECT_CHANGED = "upstream_subject_changed"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_DELETED = "account_deleted"
PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET = "password_reset"
# The second factor (issue 12 item 6): never the secret or a code, only what happened.
TOTP_ENABLED = "totp_enabled"
TOTP_REMOVED = "totp_removed"
RECOVERY_CODE_USED = "recovery_code_used"
RECOVERY_CODES_REGENERATED = "recovery_codes_regenerated"
PASSKEY_ADDED = "passkey_added"
PASSKEY_REMOVED = "passkey_removed"
PASSKEY_COUNTER_REGRESSED = "passkey_counter_regressed"


_SEQUENCE = itertools.count()


def event_id() -> str:
    """Ids that sort in the order events were recorded (a timeline lists events of one second
    newest first by id): the wall clock in nanoseconds and a per-process counter, then
    randomness so replicas never collide."""
    return f"{time.time_ns():020d}{next(_SEQUENCE) % 1_000_000:06d}{new_handle(8)}"


def record(session: AsyncSession, kind: str, user_id: str | None, now: int,
           **detail: Any) -> SecurityEvent:
    event = SecurityEvent(id=event_id(), user_id=user_id, kind=kind, detail=detail,
                          created_at=now)
    session.add(event)
    return event


_EVENTS = cast(Table, SecurityEvent.__table__)
_INSERT_EVENT = inserting_rows(_EVENTS, batched=True)


async def write(connection: Connection, kind: str, user_id: str | None, now: int,
                **detail: Any) -> None:
    """`record`, written at once with one prepared statement (every sign-in records one)."""
    await _INSERT_EVENT.run(connection, {"id": event_id(), "user_id": user_id, "kind": kind,
                                         "detail": detail, "created_at": now})


async def events_of_user(session: AsyncSession, user_id: str, limit: int | None = 50
                         ) -> list[SecurityEvent]:
    """Newest first; `limit` None for all of them (the data export)."""
    return list(await session.scalars(
        select(SecurityEvent).where(SecurityEvent.user_id == user_id)
        .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc()).limit(limit)))
