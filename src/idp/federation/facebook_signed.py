"""Facebook `signed_request` (federation.md §3.5), as POSTed to the deauthorize and
data-deletion callbacks (requirements 29, 30, verification part).

Format: `base64url(signature) "." base64url(payload JSON)`, unpadded, where
`signature = HMAC-SHA256(key=app secret, msg=<the encoded payload as received>)`. The payload's
`algorithm` must be `HMAC-SHA256`, and signatures are compared in constant time. The signature
is checked before the payload is parsed, so unauthenticated JSON is never read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.federation.errors import InvalidSignedRequest

MAX_LENGTH = 8192
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


@dataclass(frozen=True)
class SignedRequest:
    user_id: str  # the app-scoped user id (ASID)
    issued_at: int | None
    expires: int | None  # present in data-deletion requests
    payload: Mapping[str, Any] = field(repr=False)


def parse_signed_request(value: str, app_secret: str) -> SignedRequest:
    if len(value) > MAX_LENGTH:
        raise InvalidSignedRequest("the signed_request is too long")
    encoded_signature, dot, encoded_payload = value.partition(".")
    if not dot:
        raise InvalidSignedRequest("the signed_request has no payload")
    signature = _decode(encoded_signature)
    expected = hmac.new(app_secret.encode("utf-8"), encoded_payload.encode("ascii", "replace"),
                        hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidSignedRequest("the signed_request's signature does not verify")
    try:
        payload = json.loads(_decode(encoded_payload))
    except ValueError:
        raise InvalidSignedRequest("the signed_request's payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidSignedRequest("the signed_request's payload is not an object")
    algorithm = payload.get("algorithm")
    # §3.5: reject unless algorithm == HMAC-SHA256 (compared case-insensitively).
    if not isinstance(algorithm, str) or algorithm.upper() != "HMAC-SHA256":
        raise InvalidSignedRequest("the signed_request's algorithm is not HMAC-SHA256")
    user_id = payload.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not isinstance(user_id, str) or not user_id:
        raise InvalidSignedRequest("the signed_request names no user")
    return SignedRequest(user_id=user_id, issued_at=_int(payload.get("issued_at")),
                         expires=_int(payload.get("expires")), payload=payload)


def _decode(part: str) -> bytes:
    # Facebook's signature "always has a = appended" (§3.5): re-pad whatever arrives.
    if not _B64URL.fullmatch(part):
        raise InvalidSignedRequest("the signed_request is not base64url")
    stripped = part.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSignedRequest("the signed_request is not base64url") from None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
