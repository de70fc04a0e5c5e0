"""Tables. Portable across PostgreSQL and SQLite: times are integer epoch seconds (the unit JWTs
use), lists and objects are JSON, identifiers are opaque strings.

Secrets and single-use handles are stored as SHA-256 digests only (`*_hash` columns).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Json = dict[str, Any]


class Base(DeclarativeBase):
    # Named constraints, so later migrations can alter them on PostgreSQL and SQLite alike.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })
    type_annotation_map = {int: BigInteger}


class Client(Base):
    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    client_type: Mapped[str] = mapped_column(String(16))  # "public" | "confidential"
    application_type: Mapped[str] = mapped_column(String(16), default="web")  # "web" | "native"
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    allowed_scopes: Mapped[list[str]] = mapped_column(JSON)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="RS256")
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    # Refresh tokens without offline_access: the app keeps the customer signed in for weeks.
    long_sessions: Mapped[bool] = mapped_column(Boolean, default=False)
    # private_key_jwt (RFC 7523, OIDC Core §9): the client's public keys, inline or by URL.
    jwks: Mapped[Json | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    # OIDC Back-Channel Logout 1.0 §2.2
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=True)
    # Requested scopes the customer may decline on the consent page.
    optional_scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # RFC 8935 push endpoint for Security Event Tokens (consent changes, session revocation).
    event_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int]


class User(Base):
    __tablename__ = "users"

    # The OIDC `sub`: opaque, random, never reassigned (OIDC Core §2, §8).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Normalised (trimmed, lower-cased); unique so concurrent registrations cannot both win.
    # None for an account made from an upstream identity that shared no address (Apple, FB).
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[Json] = mapped_column(JSON, default=dict)
    created_at: Mapped[int]
    updated_at: Mapped[int]
    # Set when the account may no longer sign in (e.g. Apple `account-delete` took its only
    # sign-in method, federation.md §9 requirement 27); None while it is usable.
    disabled_at: Mapped[int | None]


class SigningKey(Base):
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8))  # "active" | "retired"
    public_jwk: Mapped[Json] = mapped_column(JSON)
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int]
    activated_at: Mapped[int | None]
    retired_at: Mapped[int | None]
    # A retired key leaves the JWKS at this time: when every token it signed has expired.
    publish_until: Mapped[int | None]


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


class Interaction(Base):
    """A validated authorization request waiting for the end-user (login, consent)."""

    __tablename__ = "interactions"

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


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

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


class AccessToken(Base):
    """Server-side record of each JWT access token, so introspection and UserInfo answer from
    live state and a replayed code can revoke what it produced."""

    __tablename__ = "access_tokens"
    __table_args__ = (Index("ix_access_tokens_code_hash", "code_hash"),)

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grant_id: Mapped[str | None] = mapped_column(
        ForeignKey("grants.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str | None] = mapped_column(String(64))
    # The browser session the token was issued in (None for client credentials).
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    claims: Mapped[Json | None] = mapped_column(JSON)
    issued_at: Mapped[int]
    expires_at: Mapped[int]
    revoked_at: Mapped[int | None]


class RefreshToken(Base):
    """A refresh token, stored as a digest. Rotated on every use (RFC 9700 §4.14.2): the used
    row stays as a tombstone so presenting it again is recognised as reuse."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    claims: Mapped[Json | None] = mapped_column(JSON)
    # Granted offline_access: survives the end of the browser session (OIDC Core §11).
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    auth_time: Mapped[int]
    amr: Mapped[list[str]] = mapped_column(JSON)
    acr: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    # The whole chain's absolute end, carried over on rotation.
    expires_at: Mapped[int]
    idle_expires_at: Mapped[int]
    used_at: Mapped[int | None]
    revoked_at: Mapped[int | None]


class SessionClient(Base):
    """Which apps received tokens in a browser session: they are told when it ends."""

    __tablename__ = "session_clients"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[int]


class UsedAssertion(Base):
    """`jti`s of client assertions seen, until they expire (RFC 7523 §3 item 7)."""

    __tablename__ = "used_assertions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # digest(client_id, jti)
    expires_at: Mapped[int] = mapped_column(index=True)


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


class Purpose(Base):
    """Why data is processed, defined by the operator; its version rises on material change."""

    __tablename__ = "purposes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # identity | descriptive | attitudinal | behavioral
    data_categories: Mapped[list[str]] = mapped_column(JSON)
    legal_basis: Mapped[str] = mapped_column(String(32))  # consent | contract | legitimate_interest
    sale_or_share: Mapped[bool] = mapped_column(Boolean, default=False)  # CCPA/CPRA
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[int]
    updated_at: Mapped[int]


class ClientPurpose(Base):
    __tablename__ = "client_purposes"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    purpose_id: Mapped[str] = mapped_column(
        ForeignKey("purposes.id", ondelete="CASCADE"), primary_key=True
    )
    required: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerEntry(Base):
    """The consent ledger: append-only and hash-chained (PRIV-06, PRIV-07).

    `entry_hash` covers the previous hash, the sequence number, the header columns and the
    digest of `payload`, never the payload itself, so the personal data in `payload` can be
    erased (set to NULL) while the chain still verifies.
    """

    __tablename__ = "consent_ledger"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    # Pseudonymous subject reference (HMAC of the user id), kept after erasure.
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))  # grant | change | withdraw | reconsent
    channel: Mapped[str] = mapped_column(String(16))
    gpc: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int]
    payload: Mapped[Json | None] = mapped_column(JSON)
    payload_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


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


class Throttle(Base):
    """Failed-credential counters, one row per key: an account (a digest of the submitted email,
    whether or not an account has it) or a source network (security.md ATO-01 to ATO-03)."""

    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int]
    window_started_at: Mapped[int]
    blocked_until: Mapped[int]
