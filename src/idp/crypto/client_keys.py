"""Clients' public keys (RFC 7517 JWK sets) for `private_key_jwt`: import, check, select.

security.md §0 item 7 / RFC 8725 §3.1: each key verifies only the algorithms it is meant for
(its `alg` member, or the asymmetric ones of its key type) and never `none` or HS*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

# Algorithms accepted for client assertions (advertised in discovery).
CLIENT_SIGNING_ALGS = ("RS256", "ES256", "PS256")
_ALGS_BY_KEY_TYPE = {"RSA": ("RS256", "PS256"), "EC": ("ES256",)}
# RFC 7517 §9.2: members that must never leave the key owner.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048  # RFC 7518 §3.3
MAX_KEYS = 32
ClientKey = RSAKey | ECKey


class ClientKeyError(ValueError):
    """A client's JWK set cannot be used; the message says why."""


def import_client_keys(document: Any) -> list[ClientKey]:
    """The signing keys of a client's JWK set. Keys for other uses or algorithms are skipped;
    private key material refuses the whole set (its owner has published a secret)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ClientKeyError("a JWK set is an object with a keys array")
    if len(document["keys"]) > MAX_KEYS:
        raise ClientKeyError(f"a JWK set may hold at most {MAX_KEYS} keys")
    keys = [key for jwk in document["keys"] if (key := _import_key(jwk)) is not None]
    if not keys:
        raise ClientKeyError("the JWK set has no RSA or P-256 signing key")
    return keys


def _import_key(jwk: Any) -> ClientKey | None:
    if not isinstance(jwk, dict):
        raise ClientKeyError("each key of a JWK set is an object")
    if PRIVATE_MEMBERS & jwk.keys():
        raise ClientKeyError("the JWK set holds private key material")
    kty = jwk.get("kty")
    if kty not in _ALGS_BY_KEY_TYPE or jwk.get("use", "sig") != "sig":
        return None
    if "alg" in jwk and jwk["alg"] not in _ALGS_BY_KEY_TYPE[kty]:
        return None
    if kty == "EC" and jwk.get("crv") != "P-256":
        return None
    try:
        key: ClientKey = RSAKey.import_key(jwk) if kty == "RSA" else ECKey.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise ClientKeyError("a key of the JWK set is malformed") from None
    raw = key.raw_value
    if isinstance(raw, rsa.RSAPublicKey) and raw.key_size < MIN_RSA_BITS:
        raise ClientKeyError(f"RSA keys need at least {MIN_RSA_BITS} bits")
    return key


def allowed_algs(key: ClientKey) -> tuple[str, ...]:
    alg = key.alg
    return (alg,) if alg else _ALGS_BY_KEY_TYPE[key.key_type]


def has_kid(keys: Sequence[ClientKey], kid: str) -> bool:
    return any(key.kid == kid for key in keys)


def select_key(keys: Sequence[ClientKey], kid: str | None, alg: str) -> ClientKey | None:
    """The one key that may verify a JWS with this header, or None (no key, or ambiguous)."""
    candidates = [k for k in keys if alg in allowed_algs(k) and (kid is None or k.kid == kid)]
    return candidates[0] if len(candidates) == 1 else None
