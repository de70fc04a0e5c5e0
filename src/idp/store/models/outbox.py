"""Messages to apps and upstream providers, and each delivery attempt."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class OutboxMessage(Base):
    """A message that must reach an app, written in the transaction of the change that caused
    it and delivered by the dispatcher with retries (transactional outbox)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # The app the message is for; None for a message to an upstream provider (revocation at
    # account deletion, federation.md §9 requirement 31).
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"))
    target_url: Mapped[str] = mapped_column(Text)
    payload: Mapped[Json] = mapped_column(JSON)
    created_at: Mapped[int]
    next_attempt_at: Mapped[int]
    attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[int | None]
    delivered_at: Mapped[int | None]
    abandoned_at: Mapped[int | None]
    # The consent ledger entry whose change this message carries ("applied to 3 of 3 apps").
    change_id: Mapped[str | None] = mapped_column(String(64), index=True)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(200))
