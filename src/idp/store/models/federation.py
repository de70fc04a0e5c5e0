"""Upstream providers, linked identities, upstream round trips and copied pictures."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class Upstream(Base):
    """An upstream identity provider (Google, Facebook, Apple, any OIDC issuer)."""

    __tablename__ = "upstreams"

    alias: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    # The UpstreamConfig without its secrets; they are in `secrets_encrypted` (Fernet).
    config: Mapped[Json] = mapped_column(JSON)
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[int]
    updated_at: Mapped[int]


class Identity(Base):
    """An upstream identity linked to an account, keyed by (namespace, subject) and never by
    email; a database constraint keeps it on at most one account (federation.md §9 req 14-15)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("namespace", "subject", name="uq_identities_key"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(32))
    namespace: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Imported attributes, each with its source and time (issue 4 item 6).
    profile: Mapped[Json] = mapped_column(JSON, default=dict)
    # The upstream token kept for revocation at account deletion (requirement 31), Fernet-
    # encrypted; its RISC identifier, base64 SHA-512(SHA-512(token)) (requirement 28).
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_digest: Mapped[str | None] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # The customer's import decisions per attribute, {name: true|false} (issue 4 item 6).
    import_choices: Mapped[Json | None] = mapped_column(JSON)
    created_at: Mapped[int]
    last_login_at: Mapped[int]
    # Apple's `transfer_sub` while an app moves between teams (federation.md §2.6,
    # requirement 18): what the other team will know this customer by.
    transfer_sub: Mapped[str | None] = mapped_column(String(255))
    # Apple relay address deliverability (requirement 27: email-disabled / email-enabled);
    # None until the upstream says.
    email_deliverable: Mapped[bool | None] = mapped_column(Boolean)


class UpstreamDeletion(Base):
    """A data-deletion request from an upstream (Facebook, requirement 30). Only the digest of
    the confirmation code is kept; the status page shows this row's state and nothing else."""

    __tablename__ = "upstream_deletions"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    alias: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # "completed"
    created_at: Mapped[int]
    completed_at: Mapped[int | None]


class FederationState(Base):
    """One upstream login in flight: single use, bound to the browser, short-lived."""

    __tablename__ = "federation_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "login": an upstream round trip; "link": an upstream identity waiting for the customer
    # to prove control of the existing account with that email (requirement 19).
    purpose: Mapped[str] = mapped_column(String(8))
    alias: Mapped[str] = mapped_column(String(32))
    browser_hash: Mapped[str] = mapped_column(String(64))
    interaction_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))  # the account a link must prove
    # The upstream Transaction (nonce, PKCE verifier) or the pending identity, encrypted.
    transaction_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int]
    expires_at: Mapped[int]
    used_at: Mapped[int | None]


class Picture(Base):
    """A profile picture copied from an upstream whose URLs expire (Facebook, requirement 37),
    served from our own origin under an unguessable id."""

    __tablename__ = "pictures"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int]
