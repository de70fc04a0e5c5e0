"""Client apps and the tokens that let apps register themselves, customer accounts, and our
signing keys."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.store.models.base import Base, Json


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
    # RFC 9126 §6: the authorization endpoint takes this client's requests only pushed.
    require_par: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 9449 §5.2 `dpop_bound_access_tokens`: token requests without a DPoP proof refused.
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every sign-in to this client uses a second factor (issue 12 item 7, step-up).
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    # OIDC Core §8 / Registration §2: "public" (the account id) or "pairwise" (a `sub` per
    # sector, OIDC Core §8.1); the sector, fixed at registration, is the host of
    # `sector_identifier_uri` or of the one redirect URI host (None for public clients).
    subject_type: Mapped[str] = mapped_column(String(16), default="public",
                                              server_default="public")
    sector_identifier_uri: Mapped[str | None] = mapped_column(Text)
    sector_identifier: Mapped[str | None] = mapped_column(String(255))
    # OIDC Registration §2 / RFC 7591 §2: the app's logo and policy pages, on the consent page.
    logo_uri: Mapped[str | None] = mapped_column(Text)
    policy_uri: Mapped[str | None] = mapped_column(Text)
    tos_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int]
    # RFC 7592: the digest of the registration access token of a client that registered
    # itself (RFC 7591); None for clients an operator registered.
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))


class InitialAccessToken(Base):
    """RFC 7591 §3: a token an operator hands out that lets its holder register clients
    (when IDP_REGISTRATION=token): a number of uses, until a time."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)
    uses_left: Mapped[int]


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
    # The language the customer picked for pages and mails (a BCP 47 tag with a catalog,
    # idp.locales); None: the browser's (issue 15 item 2).
    ui_locale: Mapped[str | None] = mapped_column(String(35))


class AccountToken(Base):
    """A one-time token mailed to a customer (a password reset link, an address change to
    confirm or undo): stored as a digest, good until `expires_at`, taken once."""

    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    # None for a registration's link: the account is made when the link is used.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    # What the token carries out (the address to change to, the address to restore, the
    # address and authorization request of a registration).
    detail: Mapped[Json | None] = mapped_column(JSON)
    created_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)


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
