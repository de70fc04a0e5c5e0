"""The device authorization grant (RFC 8628): a device's request, waiting for the customer to
approve it on another screen."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class DeviceCode(Base):
    """One device authorization request. Both codes are stored as digests only (RFC 8628
    §5.2: the device code is a bearer secret; the user code a short-lived one). `status` goes
    pending → approved or denied, once; an approved code is redeemed once (`used_at`)."""

    __tablename__ = "device_codes"

    device_code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    # The authorization request the device made (scope, claims, acr_values), as the
    # interaction that approves it will see it.
    request: Mapped[Json] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    # Set on approval: who approved, under which grant, how they had authenticated.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grant_id: Mapped[str | None] = mapped_column(
        ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str] | None] = mapped_column(JSON)
    sid: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int | None]
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    acr: Mapped[str | None] = mapped_column(String(64))
    # RFC 8628 §3.5: the polling interval, raised by 5 s at every slow_down.
    interval: Mapped[int]
    last_polled_at: Mapped[int | None]
    created_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)
    used_at: Mapped[int | None]
