"""Minting access tokens (RFC 9068) and ID tokens (OIDC Core §2, §3.1.3.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.crypto.keys import KeyRing
from idp.domain import ClientConfig
from idp.protocol.claims import at_hash, release, user_claims
from idp.services.context import Context
from idp.store.models import AccessToken, Grant, User


@dataclass(frozen=True)
class Authentication:
    """How and when the end-user authenticated, carried from the code into the tokens."""

    auth_time: int
    amr: tuple[str, ...]
    acr: str
    sid: str | None
    nonce: str | None


def consent_claim(grant: Grant, scopes: list[str]) -> dict[str, Any]:
    """The `consent` claim: what this token was granted under, so a backend can enforce it."""
    return {"grant_id": grant.id, "scopes": scopes, "granted_at": grant.created_at,
            "updated_at": grant.updated_at}


async def mint_access_token(ctx: Context, ring: KeyRing, session: AsyncSession,
                            client: ClientConfig,
                            user: User, grant: Grant, scopes: list[str],
                            auth: Authentication, claims_param: dict[str, Any] | None,
                            code_hash: str | None) -> str:
    now = ctx.now()
    jti = new_handle(16)
    claims = {
        "iss": ctx.settings.issuer,
        "sub": user.id,
        "aud": ctx.settings.issuer,
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "jti": jti,
        "iat": now,
        "exp": now + ctx.settings.access_token_ttl,
        "auth_time": auth.auth_time,
        "acr": auth.acr,
        "amr": list(auth.amr),
        "consent": consent_claim(grant, scopes),
    }
    token = ring.sign(claims, alg="RS256", typ="at+jwt")
    session.add(
        AccessToken(
            jti=jti, client_id=client.client_id, user_id=user.id, grant_id=grant.id,
            code_hash=code_hash, scopes=scopes, claims=claims_param, issued_at=now,
            expires_at=claims["exp"], revoked_at=None,
        )
    )
    return token


def mint_id_token(ctx: Context, ring: KeyRing, client: ClientConfig, user: User, grant: Grant,
                        scopes: list[str], auth: Authentication,
                        claims_param: dict[str, Any] | None, access_token: str | None) -> str:
    now = ctx.now()
    available = user_claims(user.email, user.email_verified, user.profile, user.updated_at)
    claims: dict[str, Any] = release(available, scopes, grant.claims, "id_token", claims_param)
    claims.update(
        {
            "iss": ctx.settings.issuer,
            "sub": user.id,
            "aud": client.client_id,
            "azp": client.client_id,
            "exp": now + ctx.settings.id_token_ttl,
            "iat": now,
            "auth_time": auth.auth_time,
            "amr": list(auth.amr),
            "acr": auth.acr,
        }
    )
    if auth.sid is not None:
        claims["sid"] = auth.sid
    if auth.nonce is not None:
        claims["nonce"] = auth.nonce
    if access_token is not None:
        claims["at_hash"] = at_hash(access_token)
    return ring.sign(claims, alg=client.id_token_signed_response_alg, typ="JWT")
