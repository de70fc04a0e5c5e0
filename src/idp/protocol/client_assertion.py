"""Rules for a JWT client assertion's claims (RFC 7523 §3, OIDC Core §9, and the audience
rules of draft-ietf-oauth-rfc7523bis as security.md §1 adopts them)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from idp import errors
from idp.crypto.client_keys import ClientKeyError, import_client_keys
from idp.protocol.redirect_uri import well_formed

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_BYTES = 16 * 1024  # REL-10: JWTs are size-capped before parsing
LEEWAY_SECONDS = 60  # REL-07
MAX_LIFETIME_SECONDS = 300  # REL-07: bounds how long a jti must be remembered


@dataclass(frozen=True)
class AcceptedAssertion:
    jti: str
    # Until when the jti must be remembered: the assertion is accepted up to exp + leeway.
    remember_until: int


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise errors.InvalidClient(f"client_assertion {name} is not a number")
    return float(value)


def check_audience(aud: Any, audiences: Collection[str]) -> None:
    # rfc7523bis: the issuer identifier; the token endpoint URL is accepted for interop. An
    # array is accepted only if every value is ours (the 2025 audience-injection issue).
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not values or any(
            not isinstance(v, str) or v not in audiences for v in values):
        raise errors.InvalidClient("client_assertion aud is not this authorization server")


def check_claims(claims: Mapping[str, Any], client_id: str, audiences: Collection[str],
                 now: int) -> AcceptedAssertion:
    # RFC 7523 §3 items 1-2: iss and sub are both the client_id (OIDC Core §9).
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise errors.InvalidClient("client_assertion iss and sub must be the client_id")
    check_audience(claims.get("aud"), audiences)
    exp, iat, nbf = _number(claims, "exp"), _number(claims, "iat"), _number(claims, "nbf")
    # RFC 7523 §3 item 4: exp is required and the JWT is rejected once it has passed.
    if exp is None:
        raise errors.InvalidClient("client_assertion has no exp")
    if now > exp + LEEWAY_SECONDS:
        raise errors.InvalidClient("client_assertion has expired")
    if nbf is not None and now + LEEWAY_SECONDS < nbf:
        raise errors.InvalidClient("client_assertion is not valid yet")
    if iat is not None and now + LEEWAY_SECONDS < iat:
        raise errors.InvalidClient("client_assertion was issued in the future")
    if exp - (iat if iat is not None else now) > MAX_LIFETIME_SECONDS:
        raise errors.InvalidClient(
            f"client_assertion lifetime exceeds {MAX_LIFETIME_SECONDS} seconds")
    # RFC 7523 §3 item 7 (OIDC Core §9: required): single use.
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise errors.InvalidClient("client_assertion has no jti")
    return AcceptedAssertion(jti, math.ceil(exp) + LEEWAY_SECONDS)


def key_registration_problem(method: str, jwks: Any, jwks_uri: str | None, dev_mode: bool
                             ) -> str | None:
    """Why a client's `jwks` / `jwks_uri` cannot be registered (OIDC Registration §2), or None."""
    if method != "private_key_jwt":
        return "jwks and jwks_uri are for private_key_jwt clients" if (
            jwks is not None or jwks_uri is not None) else None
    if (jwks is None) == (jwks_uri is None):
        return "a private_key_jwt client needs either jwks or jwks_uri"
    if jwks_uri is None:
        try:
            import_client_keys(jwks)
        except ClientKeyError as exc:
            return f"jwks: {exc}"
        return None
    if not well_formed(jwks_uri):
        return "jwks_uri is not a URL written in RFC 3986 characters as it will be used"
    parts = urlsplit(jwks_uri)
    if parts.scheme != "https" and not (dev_mode and parts.scheme == "http"):
        return "jwks_uri must use https"
    if not parts.hostname or parts.username is not None or parts.fragment or len(jwks_uri) > 2000:
        return "jwks_uri must be an absolute URL without user information or fragment"
    return None
