"""Minting access tokens (RFC 9068), ID tokens (OIDC Core §2, §3.1.3.6) and refresh tokens.

Access and ID tokens are signed JWTs with no row. A refresh token's row is added to the
caller's unit of work; the caller returns the tokens only after that unit of work commits
(REL-04).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table

from idp.crypto.handles import digest, new_handle
from idp.crypto.keys import KeyRing
from idp.domain import ClientConfig
from idp.protocol.claims import at_hash, release, user_claims
from idp.protocol.privacy import NO_STANDING, Standing
from idp.services.consent.grants import grant_consent_claim
from idp.services.context import Context
from idp.services.profile.release import id_token_claims
from idp.services.tokens.dpop import BOUND_KEY
from idp.store.models import Grant, RefreshToken, User
from idp.store.prepared import Connection, inserting_rows
from idp.store.tokens import chain_of

# A Core insert, built once: each request only binds its values (no ORM flush, no
# per-request statement construction), straight to the driver on PostgreSQL.
_REFRESH_TABLE = cast(Table, RefreshToken.__table__)
INSERT_REFRESH_TOKEN = inserting_rows(_REFRESH_TABLE)


@dataclass(frozen=True)
class Authentication:
    """How and when the end-user authenticated, carried from the code into the tokens."""

    auth_time: int
    amr: tuple[str, ...]
    acr: str
    sid: str | None
    nonce: str | None


@dataclass(frozen=True)
class Subject:
    """Who a token is about: an end-user under a grant, or a client acting for itself.
    `sub` is what the client knows the end-user by (`Context.subject_of`: pairwise clients
    have their own, OIDC Core §8.1); `standing` the account's privacy choices."""

    sub: str
    user: User | None = None
    grant: Grant | None = None
    auth: Authentication | None = None
    standing: Standing = NO_STANDING


def mint_access_token(ctx: Context, ring: KeyRing, client: ClientConfig, subject: Subject,
                      scopes: list[str], claims_param: dict[str, Any] | None,
                      code_hash: str | None = None) -> str:
    """An RFC 9068 access token. It has no row: everything introspection and UserInfo need
    is in the signed JWT, and its live state is its grant's (the `epoch` it was issued in)
    plus the revocation list its `jti`, `sid` and `chain` may appear in
    (`idp.store.tokens`)."""
    now = ctx.now()
    claims: dict[str, Any] = {
        "iss": ctx.settings.issuer,
        "sub": subject.sub,
        "aud": ctx.settings.issuer,
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "jti": new_handle(16),
        "iat": now,
        "exp": now + ctx.settings.access_token_ttl,
    }
    auth, grant = subject.auth, subject.grant
    if auth is not None:
        claims.update(auth_time=auth.auth_time, acr=auth.acr, amr=list(auth.amr))
        if auth.sid is not None:
            # The browser session it was issued in (OIDC Front/Back-Channel Logout's `sid`):
            # ending the session ends the token.
            claims["sid"] = auth.sid
    if grant is not None:
        # What this token was granted under, so a backend can enforce consent from it alone.
        claims["consent"] = grant_consent_claim(grant, scopes, subject.standing)
        claims["epoch"] = grant.token_epoch
    if code_hash is not None:
        # Descended from this authorization code: a replay of the code ends it.
        claims["chain"] = chain_of(code_hash)
    if claims_param and claims_param.get("userinfo"):
        # OIDC Core §5.5: the claims the app asked UserInfo to return for this token.
        claims["userinfo_claims"] = claims_param["userinfo"]
    jkt = BOUND_KEY.get()
    if jkt is not None:
        # RFC 9449 §6.1: bound to the key of the token request's DPoP proof.
        claims["cnf"] = {"jkt": jkt}
    return ring.sign(claims, alg=ctx.settings.access_token_signing_alg, typ="at+jwt")


def mint_id_token(ctx: Context, ring: KeyRing, client: ClientConfig, subject: Subject,
                  scopes: list[str], claims_param: dict[str, Any] | None,
                  access_token: str | None, include_nonce: bool = True) -> str:
    user, grant, auth = subject.user, subject.grant, subject.auth
    assert user is not None and grant is not None and auth is not None
    now = ctx.now()
    available = user_claims(user.email, user.email_verified, user.profile, user.updated_at)
    claims: dict[str, Any] = release(available, scopes, grant.claims, "id_token", claims_param)
    # Issue 16 item 2: custom attributes under operator scopes, for granted purposes only.
    claims = id_token_claims(ctx, user, grant, client.client_id, scopes, claims_param,
                             subject.standing, claims)
    claims.update(
        {
            "iss": ctx.settings.issuer,
            "sub": subject.sub,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + ctx.settings.id_token_ttl,
            "iat": now,
            "auth_time": auth.auth_time,
            "amr": list(auth.amr),
            "acr": auth.acr,
            "consent": grant_consent_claim(grant, scopes, subject.standing),
        }
    )
    if auth.sid is not None:
        claims["sid"] = auth.sid
    # OIDC Core §12.2: a refreshed ID token SHOULD NOT carry the nonce.
    if auth.nonce is not None and include_nonce:
        claims["nonce"] = auth.nonce
    if access_token is not None:
        claims["at_hash"] = at_hash(access_token)
    return ring.sign(claims, alg=client.id_token_signed_response_alg, typ="JWT")


def wants_refresh_token(client: ClientConfig, scopes: list[str]) -> bool:
    """OIDC Core §11: refresh tokens for offline_access, or for apps set up for long sessions."""
    if "refresh_token" not in client.grant_types:
        return False
    return "offline_access" in scopes or client.long_sessions


async def mint_refresh_token(ctx: Context, session: Connection,
                             client: ClientConfig,
                             subject: Subject, scopes: list[str],
                             claims_param: dict[str, Any] | None,
                             chain_expires_at: int | None = None, code_hash: str | None = None,
                             device: bool = False) -> str:
    user, grant, auth = subject.user, subject.grant, subject.auth
    assert user is not None and grant is not None and auth is not None
    now = ctx.now()
    expires_at = chain_expires_at or now + ctx.settings.refresh_token_absolute_ttl
    token = new_handle()
    await INSERT_REFRESH_TOKEN.run(session, {
        "token_hash": digest(token), "client_id": client.client_id, "user_id": user.id,
        "grant_id": grant.id, "sid": auth.sid, "code_hash": code_hash, "scopes": scopes,
        "claims": claims_param, "offline": "offline_access" in scopes,
        "auth_time": auth.auth_time, "amr": list(auth.amr), "acr": auth.acr,
        "created_at": now, "expires_at": expires_at,
        "idle_expires_at": min(expires_at, now + ctx.settings.refresh_token_idle_ttl),
        "used_at": None, "revoked_at": None, "device": device,
        "dpop_jkt": refresh_token_binding(client),
    })
    return token


def refresh_token_binding(client: ClientConfig) -> str | None:
    """RFC 9449 §5: a public client's refresh token is bound to the DPoP key of the request
    (None without a proof); a confidential client's is already bound to its credentials."""
    return BOUND_KEY.get() if client.is_public else None
