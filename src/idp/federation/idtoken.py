"""ID token checks (OpenID Connect Core §3.1.3.7; requirement 8), in the spec's order.

The signature is checked before any claim is believed; the key comes from the upstream's JWKS
by `kid`, and only the algorithms configured for the upstream are accepted (never `none`, never
HS*, whose key would be our client secret).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from idp.crypto.client_keys import ClientKey
from idp.federation.errors import InvalidIdToken

MAX_TOKEN_BYTES = 16 * 1024
KeyLookup = Callable[[str | None, str], Awaitable[ClientKey]]


@dataclass(frozen=True)
class IdTokenRules:
    allowed_issuers: frozenset[str]
    audiences: frozenset[str]  # our client ids at this upstream
    algorithms: tuple[str, ...]
    leeway: int


def read_header(token: str, algorithms: Collection[str]) -> tuple[str, str | None]:
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidIdToken("the ID token is too large")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise InvalidIdToken("the ID token is not a compact JWS") from None
    alg, kid = header.get("alg"), header.get("kid")
    # RFC 8725 §3.1: the algorithm is one we chose, not whatever the header says.
    if alg not in algorithms:
        raise InvalidIdToken("the ID token's alg is not accepted")
    if kid is not None and not isinstance(kid, str):
        raise InvalidIdToken("the ID token's kid is not a string")
    return str(alg), kid


async def verify_signature(token: str, algorithms: Collection[str],
                           key_for: KeyLookup) -> dict[str, Any]:
    alg, kid = read_header(token, algorithms)
    key = await key_for(kid, alg)
    try:
        claims = jwt.decode(token, key, algorithms=[alg]).claims
    except (JoseError, ValueError):
        raise InvalidIdToken("the ID token's signature does not verify") from None
    return dict(claims)


def check_claims(claims: dict[str, Any], rules: IdTokenRules, now: float) -> None:
    # §3.1.3.7 item 2: the issuer must match exactly (one of the upstream's spellings).
    if claims.get("iss") not in rules.allowed_issuers:
        raise InvalidIdToken("the ID token's iss is not the upstream's")
    check_audience(claims, rules.audiences)
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if exp is None or iat is None:
        raise InvalidIdToken("the ID token lacks exp or iat")
    # Item 9: the current time must be before exp; item 10: iat not in the future.
    if now >= exp + rules.leeway:
        raise InvalidIdToken("the ID token has expired")
    if iat > now + rules.leeway:
        raise InvalidIdToken("the ID token was issued in the future")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise InvalidIdToken("the ID token has no usable sub")


def check_audience(claims: dict[str, Any], audiences: frozenset[str]) -> None:
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise InvalidIdToken("the ID token has no usable aud")
    # Item 3: aud must contain our client id.
    if not audiences.intersection(values):
        raise InvalidIdToken("the ID token was not issued to us")
    # Items 4-5: with several audiences azp must be present, and when present it is us.
    azp = claims.get("azp")
    if (len(values) > 1 or azp is not None) and azp not in audiences:
        raise InvalidIdToken("the ID token's azp is not our client id")


def check_nonce(claims: dict[str, Any], expected: str, *, hashed: bool = False) -> None:
    """Item 11: the nonce must equal the one sent. `hashed`: Apple native flows send
    SHA-256(raw nonce) in hex, so the token carries the hash (federation.md §2.5)."""
    nonce = claims.get("nonce")
    if not isinstance(nonce, str):
        raise InvalidIdToken("the ID token has no nonce")
    wanted = hashlib.sha256(expected.encode("utf-8")).hexdigest() if hashed else expected
    if not hmac.compare_digest(nonce.encode("utf-8"), wanted.encode("utf-8")):
        raise InvalidIdToken("the ID token's nonce differs from the one sent")


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
