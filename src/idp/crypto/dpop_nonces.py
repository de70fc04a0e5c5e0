"""Server-provided DPoP nonces (RFC 9449 §8, §9), kept nowhere.

A nonce is the time step it was issued in and a MAC of that step under a key derived from
the operator's secret: every replica issues the same nonce in the same minute and accepts
any other replica's, with nothing shared but the secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re

from idp.crypto.keys import derive_key

STEP_SECONDS = 60
# Accepted: a nonce of this step or the two before it (two to three minutes old), and of the
# next step, for a replica whose clock runs a little ahead.
STEPS_BEHIND, STEPS_AHEAD = 2, 1
_MAC_BYTES = 16
_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")  # 8 + 16 bytes, base64url without padding


class DPoPNonces:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, now: int) -> str:
        step = (now // STEP_SECONDS).to_bytes(8, "big")
        return base64.urlsafe_b64encode(step + self._mac(step)).decode()

    def accepts(self, nonce: str, now: int) -> bool:
        if not _SHAPE.fullmatch(nonce):
            return False
        raw = base64.urlsafe_b64decode(nonce)
        step = int.from_bytes(raw[:8], "big")
        current = now // STEP_SECONDS
        if not current - STEPS_BEHIND <= step <= current + STEPS_AHEAD:
            return False
        return hmac.compare_digest(raw[8:], self._mac(raw[:8]))

    def _mac(self, step: bytes) -> bytes:
        return hmac.new(self._key, step, hashlib.sha256).digest()[:_MAC_BYTES]


@functools.lru_cache(maxsize=4)
def nonces_for(secret: str) -> DPoPNonces:
    """The nonces of this secret, keyed once per process."""
    return DPoPNonces(derive_key(secret, "dpop-nonce"))
