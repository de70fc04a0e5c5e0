"""Signing keys: generation, encryption of the private halves at rest, and the in-memory key ring.

Parsing a private key costs tens of milliseconds, so keys are imported once into a `KeyRing`
and reused until the ring is refreshed (after a rotation or when its cache time has passed).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, KeySet, RSAKey

SUPPORTED_ALGS = ("RS256", "ES256")
Key = RSAKey | ECKey


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, derived from the operator's secret (RFC 5869 HKDF)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"idp/{purpose}".encode()
    ).derive(secret.encode("utf-8"))


class KeyEncryptor:
    """Authenticated encryption of small JSON documents at rest (signing keys, upstream
    secrets), with a key derived per purpose from the operator's secret."""

    def __init__(self, secret: str, purpose: str = "signing-key-encryption") -> None:
        raw = derive_key(secret, purpose)
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, private_jwk: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(private_jwk).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise RuntimeError(
                "cannot decrypt a signing key: IDP_KEY_ENCRYPTION_SECRET differs from the one "
                "the keys were stored with"
            ) from exc
        return data


def generate_key(alg: str) -> Key:
    params: KeyParameters = {"alg": alg, "use": "sig"}
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    # RFC 7638 thumbprint: unique per key and stable, so kids never collide across rotations.
    return import_private_key({**key.as_dict(private=True), "kid": key.thumbprint()})


def import_private_key(private_jwk: dict[str, Any]) -> Key:
    if private_jwk.get("kty") == "RSA":
        return RSAKey.import_key(private_jwk)
    return ECKey.import_key(private_jwk)


def public_jwk(key: Key) -> dict[str, Any]:
    data = key.as_dict(private=False)
    return {k: data[k] for k in sorted(data)}


@dataclass(frozen=True)
class KeyRing:
    """The active signing key per algorithm and every key that is still published."""

    signing: dict[str, Key]
    published: list[dict[str, Any]]
    loaded_at: float
    verify_set: KeySet = field(repr=False, default_factory=lambda: KeySet([]))

    def signer(self, alg: str) -> Key:
        try:
            return self.signing[alg]
        except KeyError:
            raise RuntimeError(f"no active {alg} signing key") from None

    def jwks(self) -> dict[str, Any]:
        return {"keys": self.published}

    @cached_property
    def jwks_json(self) -> bytes:
        """The JWKS document, encoded once per loaded ring (it is served on every fetch)."""
        return json.dumps(self.jwks(), separators=(",", ":")).encode()

    def sign(self, claims: dict[str, Any], alg: str, typ: str) -> str:
        key = self.signer(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key, algorithms=[alg])
