"""Browser sessions, pushed and pending authorization requests, and the apps each session
reached."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class BrowserSession(Base):
    __tablename__ = "browser_sessions"

    # Digest of the cookie value; the cookie itself is never stored.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The `sid` claim (OIDC Back-Channel Logout §2.1): public, distinct from the cookie value.
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int]
    amr: Mapped[list[str]] = mapped_column(JSON)
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    expires_at: Mapped[int]
    ended_at: Mapped[int | None]
    # The upstream identity this session signed in with, so an upstream revocation can end it.
    identity_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # What the account center shows (issue 12 item 8): a description of the browser from a
    # fixed vocabulary (never the raw User-Agent), the client's /24 or /64 network (no
    # geolocation), and when the session was last used, kept at a coarse granularity.
    device: Mapped[str | None] = mapped_column(String(64))
    network: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[int | None]


class PushedRequest(Base):
    """RFC 9126: an authorization request a client pushed, redeemed once at /authorize by the
    same client within its minute."""

    __tablename__ = "pushed_requests"

    # Digest of the random part of the request_uri; the request_uri itself is never stored.
    handle_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    # The authorization request's parameters, without the client's credentials.
    params: Mapped[Json] = mapped_column(JSON)
    created_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)


class Interaction(Base):
    """A validated authorization request waiting for the end-user (login, consent)."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_client_created", "client_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Digest of the browser cookie: an interaction continues only in the browser that began it.
    browser_hash: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    request: Mapped[Json] = mapped_column(JSON)
    # Set once the end-user signed in during this interaction (prompt=login, max_age).
    session_sid: Mapped[str | None] = mapped_column(String(64))
    # Set once the end-user approved the consent page of this interaction (prompt=consent).
    consent_given: Mapped[bool] = mapped_column(Boolean, default=False)
    # Profile attributes an upstream login offered that the customer has not yet decided to
    # import or not (issue 4 item 6): {"identity_id": ..., "claims": {name: value}}.
    pending_import: Mapped[Json | None] = mapped_column(JSON)
    created_at: Mapped[int]
    expires_at: Mapped[int]


class SessionClient(Base):
    """Which apps received tokens in a browser session: they are told when it ends."""

    __tablename__ = "session_clients"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[int]
