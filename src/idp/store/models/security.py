"""Account security events and failed-credential counters."""

from __future__ import annotations

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class SecurityEvent(Base):
    """An account security event kept for the customer and for operators: links, unlinks,
    suspected domain re-registration (federation.md §9 requirement 17), deletions."""

    __tablename__ = "security_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key: the record of an account's deletion outlives the account.
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(48))
    detail: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[int]


class Throttle(Base):
    """Failed-credential counters, one row per key: an account (a digest of the submitted email,
    whether or not an account has it) or a source network (security.md ATO-01 to ATO-03)."""

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[int]
    blocked_until: Mapped[int]
