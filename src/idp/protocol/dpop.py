"""DPoP proofs (RFC 9449 §4): what a proof JWT must be, checked in §4.3's order.

Plain functions over the `DPoP` header values and the request they came with. Remembering
`jti`s (§11.1) and server nonces (§8, §9) are the caller's: they need the database and the
operator's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from idp import errors
from idp.crypto.client_keys import MIN_RSA_BITS, PRIVATE_MEMBERS

# RFC 9449 §5.1 `dpop_signing_alg_values_supported`: asymmetric only (§11.6: never none, HS*).
DPOP_SIGNING_ALGS = ("ES256", "RS256", "EdDSA")
# The key each algorithm takes: (kty, crv).
_KEYS = {"ES256": ("EC", "P-256"), "RS256": ("RSA", None), "EdDSA": ("OKP", "Ed25519")}
TYP = "dpop+jwt"
MAX_PROOF_BYTES = 8 * 1024  # REL-10: JWTs are size-capped before parsing
# RFC 9449 §11.1: a server SHOULD reject unnecessarily large jti values.
MAX_JTI_LENGTH = 256
_DEFAULT_PORTS = {"https": 443, "http": 80}


class _QuietEdDSA(EdDSAAlgorithm):
    # RFC 9864 deprecates the name EdDSA (for Ed25519), which RFC 9449 clients still send:
    # no warning per proof.
    security_warning = ""


class _Registry(jws.JWSRegistry):
    algorithms = {**jws.JWSRegistry.algorithms, "EdDSA": _QuietEdDSA()}
    # A proof's header carries its public key: an RSA one of 4096 bits is ~1 KB encoded.
    max_header_length = 2048
    max_payload_length = 4096


# One registry per algorithm, built once. RFC 7515 §4: unknown header parameters are
# ignored, unknown `crit` ones refused.
_REGISTRIES = {alg: _Registry(algorithms=[alg], strict_check_header=False)
               for alg in DPOP_SIGNING_ALGS}


@dataclass(frozen=True)
class Proof:
    """A DPoP proof that passed every check but replay and the server nonce."""

    # RFC 7638 SHA-256 thumbprint of the proof's key: the `cnf.jkt` it binds (§6.1).
    jkt: str
    jti: str
    iat: int
    nonce: str | None


@dataclass(frozen=True)
class Expected:
    """The request the proof came with, and the window its `iat` must fall in."""

    method: str
    # The endpoint's URL built from the issuer, never from the Host header.
    url: str
    now: int
    max_age: int
    future_skew: int
    # At a protected resource: the access token the proof must name in `ath` (§4.2).
    access_token: str | None = None


def check_proof(values: Sequence[str], expected: Expected) -> Proof:
    """RFC 9449 §4.3 items 1 to 9, 11 and 12's `ath`; `invalid_dpop_proof` otherwise."""
    # §4.3 items 1-2: exactly one DPoP header, holding one well-formed JWT.
    if len(values) != 1:
        raise errors.InvalidDpopProof("Exactly one DPoP header is required")
    value = values[0]
    if not value or len(value) > MAX_PROOF_BYTES or value.count(".") != 2:
        raise errors.InvalidDpopProof("The DPoP proof is not a JWT")
    try:
        obj = jws.extract_compact(value.encode("ascii"), registry=_REGISTRIES["ES256"])
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise errors.InvalidDpopProof("The DPoP proof is not a JWT") from None
    header, claims = obj.protected, _claims(obj.payload)
    if "b64" in header:
        # RFC 7797's unencoded payloads have no place in a proof.
        raise errors.InvalidDpopProof("The DPoP proof is not a JWT")
    # Item 4: explicit typing (RFC 8725 §3.11), so no other JWT can pass for a proof.
    if header.get("typ") != TYP:
        raise errors.InvalidDpopProof(f"The DPoP proof typ must be {TYP}")
    # Item 5: an asymmetric algorithm we support (§11.6: never none, never HS*).
    alg = header.get("alg")
    if alg not in DPOP_SIGNING_ALGS:
        raise errors.InvalidDpopProof(
            f"The DPoP proof alg must be one of {', '.join(DPOP_SIGNING_ALGS)}")
    key = _public_key(header.get("jwk"), alg)
    # Item 6: signed by the key it carries.
    try:
        valid = jws.validate_compact(obj, key, registry=_REGISTRIES[alg])
    except (JoseError, ValueError, TypeError):
        valid = False
    if not valid:
        raise errors.InvalidDpopProof("The DPoP proof signature is invalid")
    jti, iat = _required(claims)
    # Item 8: the method of this request.
    if claims.get("htm") != expected.method:
        raise errors.InvalidDpopProof("The DPoP proof htm does not match the request")
    # Item 9: this endpoint's URI, query and fragment aside.
    htu = claims.get("htu")
    if not isinstance(htu, str) or _without_query(htu) != _without_query(expected.url):
        raise errors.InvalidDpopProof("The DPoP proof htu does not match the request")
    nonce = claims.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or not nonce):
        raise errors.InvalidDpopProof("The DPoP proof nonce must be a string")
    # Item 11 (§11.1): created within the accepted window, a few seconds ahead allowed.
    if iat < expected.now - expected.max_age:
        raise errors.InvalidDpopProof("The DPoP proof iat is too old")
    if iat > expected.now + expected.future_skew:
        raise errors.InvalidDpopProof("The DPoP proof iat is in the future")
    # Item 12: at a protected resource, the hash of the access token presented with it.
    if expected.access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode(), access_token_hash(expected.access_token).encode()):
            raise errors.InvalidDpopProof("The DPoP proof ath does not match the access token")
    return Proof(key.thumbprint(), jti, iat, nonce)


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the token's ASCII bytes."""
    raw = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def bound_key(claims: Mapping[str, Any]) -> str | None:
    """The `cnf.jkt` a token is bound to (RFC 9449 §6.1), or None for a bearer token."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def _claims(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeError):
        raise errors.InvalidDpopProof("The DPoP proof is not a JWT") from None
    if not isinstance(claims, dict):
        raise errors.InvalidDpopProof("The DPoP proof is not a JWT")
    return claims


def _public_key(jwk: Any, alg: str) -> RSAKey | ECKey | OKPKey:
    """The proof's `jwk` header: a public key of the type its algorithm takes."""
    if not isinstance(jwk, dict):
        raise errors.InvalidDpopProof("The DPoP proof has no jwk header")
    # Item 7: a public key only; a private one in the header means it has leaked.
    if PRIVATE_MEMBERS & jwk.keys():
        raise errors.InvalidDpopProof("The DPoP proof jwk must not contain a private key")
    kty, crv = _KEYS[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise errors.InvalidDpopProof(f"The DPoP proof jwk is not a key for {alg}")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise errors.InvalidDpopProof("The DPoP proof jwk is malformed") from None
    raw = key.raw_value
    if isinstance(raw, rsa.RSAPublicKey) and raw.key_size < MIN_RSA_BITS:
        raise errors.InvalidDpopProof(f"The DPoP proof key must have {MIN_RSA_BITS} bits or more")
    assert isinstance(key, RSAKey | ECKey | OKPKey)
    return key


def _required(claims: dict[str, Any]) -> tuple[str, int]:
    """Item 3: the claims every proof has (§4.2): jti, htm, htu, iat."""
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise errors.InvalidDpopProof("The DPoP proof jti is missing or too long")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise errors.InvalidDpopProof("The DPoP proof iat is missing or not a number")
    for name in ("htm", "htu"):
        if not isinstance(claims.get(name), str):
            raise errors.InvalidDpopProof(f"The DPoP proof has no {name}")
    return jti, int(iat)


def _without_query(url: str) -> tuple[str, str, int | None, str] | None:
    """A URL compared as RFC 9449 §4.3 item 9 says: query and fragment ignored, scheme and
    host case-insensitive, a default port the same as none (RFC 3986 §6.2.2, §6.2.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.hostname or scheme not in _DEFAULT_PORTS or parts.username is not None:
        return None
    return (scheme, parts.hostname, None if port == _DEFAULT_PORTS[scheme] else port,
            parts.path or "/")
