"""PKCE verification (RFC 7636 §4.6), S256 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

# RFC 7636 §4.1: 43-128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_is_wellformed(verifier: str) -> bool:
    return bool(_VERIFIER.match(verifier))


def verify_s256(verifier: str, challenge: str) -> bool:
    if not verifier_is_wellformed(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
