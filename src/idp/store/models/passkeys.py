"""Passkeys (WebAuthn Level 3 public key credentials) and the challenges of their ceremonies."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base


class Passkey(Base):
    """A discoverable credential registered by a customer. Only its public key is stored."""

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    # WebAuthn §5.1: the credential id, base64url; at most 1023 bytes (§6.1), so 1366 chars.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key, as registered
    # §6.1.1: the signature counter; 0 for authenticators that do not keep one.
    sign_count: Mapped[int]
    transports: Mapped[list[str]] = mapped_column(JSON)
    # §6.1 flags BE ("multi_device" when backup eligible) and BS (backed up now).
    device_type: Mapped[str] = mapped_column(String(16))
    backed_up: Mapped[bool]
    aaguid: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    last_used_at: Mapped[int | None]


class WebAuthnChallenge(Base):
    """A ceremony's challenge, bound to one browser and one place (the account center's
    registration, an interaction's sign-in, a second-factor page) by the digest that keys it;
    taken once, with one conditional DELETE."""

    __tablename__ = "webauthn_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(128))  # base64url
    # The account a registration or a second-factor assertion is for; None: username-less.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[int] = mapped_column(index=True)
