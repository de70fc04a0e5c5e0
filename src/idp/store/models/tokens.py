"""Grants and what is issued under them; used client-assertion ids."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


class Grant(Base):
    """One customer's consent to one client; everything issued hangs off it."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("user_id", "client_id", name="uq_grants_user_client"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # Individual claims consented through the `claims` request parameter (OIDC Core §5.5).
    claims: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"id": purpose id, "version": n}] agreed to, at the version shown.
    purposes: Mapped[list[Json]] = mapped_column(JSON, default=list)
    # Optional items the customer declined: not asked again until the app asks with
    # prompt=consent or the purpose's version is raised.
    declined_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    declined_purposes: Mapped[list[Json]] = mapped_column(JSON, default=list)
    # Global Privacy Control signal seen when consent was last given.
    gpc: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    created_at: Mapped[int]
    updated_at: Mapped[int]
    revoked_at: Mapped[int | None]
    # Raised whenever every access token issued under the grant so far must stop working
    # (consent narrowed, a refresh token reused or revoked, the account signed out
    # everywhere). Each access token carries the epoch it was issued in; one from an older
    # epoch is inactive. A counter, not a time: a token issued in the same second as the
    # revocation, after it, must stay live.
    token_epoch: Mapped[int] = mapped_column(default=0, server_default="0")


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"
    __table_args__ = (
        Index("ix_authorization_codes_client_created", "client_id", "created_at"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    claims: Mapped[Json | None] = mapped_column(JSON)
    sid: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[int]
    amr: Mapped[list[str]] = mapped_column(JSON)
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    expires_at: Mapped[int]
    # Kept after redemption as a tombstone so a replay is recognised (REL-01).
    used_at: Mapped[int | None]
    # RFC 9449 §10: the JWK thumbprint of the DPoP key the code is bound to (the request's
    # dpop_jkt, or the key of a pushed request's proof); its redemption needs that key's proof.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class TokenRevocation(Base):
    """Access tokens are JWTs with no row of their own: introspection and UserInfo judge one
    by its grant (live, and its `token_epoch`), its client, and this short list of what was
    revoked more narrowly than a grant: one token (`jti:`), a browser session's tokens
    (`sid:`), or the tokens descended from one authorization code (`code:`). An entry is
    kept until every token it could name has expired, then purged."""

    __tablename__ = "token_revocations"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    revoked_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)


class RefreshToken(Base):
    """A refresh token, stored as a digest. Rotated on every use (RFC 9700 §4.14.2): the used
    row stays as a tombstone so presenting it again is recognised as reuse."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_code_hash", "code_hash"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    # The authorization code the chain began with, carried over on rotation (and into the
    # access tokens refreshed from it): a replay of that code revokes the whole chain.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    claims: Mapped[Json | None] = mapped_column(JSON)
    # Granted offline_access: survives the end of the browser session (OIDC Core §11).
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    # Issued through the device grant (RFC 8628): a device cannot show a consent page, so
    # its refresh fails once the grant no longer covers what the app asks (issue 13 item 2).
    device: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    auth_time: Mapped[int]
    amr: Mapped[list[str]] = mapped_column(JSON)
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    # The whole chain's absolute end, carried over on rotation.
    expires_at: Mapped[int]
    idle_expires_at: Mapped[int]
    used_at: Mapped[int | None]
    revoked_at: Mapped[int | None]
    # RFC 9449 §5: a public client's refresh token is bound to the DPoP key (its RFC 7638
    # thumbprint) it was obtained with; only a proof of that key refreshes it.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))


class UsedAssertion(Base):
    """`jti`s of client assertions seen, until they expire (RFC 7523 §3 item 7)."""

    __tablename__ = "used_assertions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest(client_id, jti)
    expires_at: Mapped[int] = mapped_column(index=True)


class DpopProof(Base):
    """DPoP proofs seen, by digest(jkt, jti), while their `iat` is in the accepted window
    (RFC 9449 §11.1): every replica refuses a proof any of them has seen."""

    __tablename__ = "dpop_proofs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(index=True)
