"""Random handles (codes, tokens, session ids) and their at-rest digests.

RFC 6749 §10.10 asks for a guessing probability of at most 2^-160; 256 random bits exceed it.
Handles are high-entropy, so a plain SHA-256 digest is the right at-rest form (a password KDF
would cost ~1 s of CPU per request for no gain), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_handle(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def new_public_id() -> str:
    """A new public identifier: an account id (the OIDC `sub`, Core §2: opaque, never
    reassigned) or a `client_id`. 128 random bits, URL-safe, and never starting with '-' or
    '_', so operators and tools can pass one as a command-line argument without it reading
    as an option."""
    while True:
        subject = secrets.token_urlsafe(16)
        if subject[0].isalnum():
            return subject


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def digest_matches(value: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(value), expected_digest)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
