"""Account security events and failed-credential counters."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Integer, String
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


class AdminEvent(Base):
    """One change an operator made (CLI or admin API): who, what, when, before and after."""

    __tablename__ = "admin_events"

    # The order events happened in (the clock may not tell two apart).
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    at: Mapped[int]
    # The admin client's id, or "cli" for the command line on the server.
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    before: Mapped[Json | None] = mapped_column(JSON)
    after: Mapped[Json | None] = mapped_column(JSON)
