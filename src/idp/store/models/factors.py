"""Second factors: an account's authenticator app (TOTP), its recovery codes, and sign-ins
waiting for the second factor after the first."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base


class TotpFactor(Base):
    """An account's authenticator app (RFC 6238), once confirmed with a code."""

    __tablename__ = "totp_factors"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    # The shared secret, Fernet-encrypted under a key derived for this purpose alone.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # The time step of the last code accepted: a code is taken at most once (RFC 6238 §5.2,
    # ASVS 6.5.1), so only a later step's code is accepted after it.
    last_step: Mapped[int | None]
    created_at: Mapped[int]


class RecoveryCode(Base):
    """One of an account's single-use recovery codes, as an HMAC digest."""

    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    used_at: Mapped[int | None]


class PendingSignIn(Base):
    """A right first factor waiting for the second: never a session by itself. Keyed by the
    digest of this browser's cookie and the place the sign-in continues (an interaction, the
    account center's sign-in or re-authentication), so it counts only in this browser and
    there; it ends with its interaction."""

    __tablename__ = "pending_sign_ins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    interaction_id: Mapped[str | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What the first factor was (RFC 8176 values): ["pwd"], ["fed"], ["pwd", "fed"].
    amr: Mapped[list[str]] = mapped_column(JSON)
    # The upstream identity of a sign-in through an upstream provider.
    identity_id: Mapped[str | None] = mapped_column(String(64))
    # The digest of a pending upstream link's handle, linked once the second factor is given.
    link_hash: Mapped[str | None] = mapped_column(String(64))
    # Where a re-authentication continues (a path under /account).
    next_path: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)
