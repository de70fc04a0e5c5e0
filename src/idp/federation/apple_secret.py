"""Apple's client secret: a JWT we sign ourselves with the team's key (federation.md §2.2,
requirement 10).

Header `alg=ES256`, `kid=<key id>`; claims `iss=<team id>`, `iat`, `exp`,
`aud=https://appleid.apple.com`, `sub=<client id>`; `exp - iat` at most 15,777,000 s. Parsing
the key and signing are done once and reused until shortly before expiry, or until Apple
answers `invalid_client` and `invalidate` is called.
"""

from __future__ import annotations

from collections.abc import Callable

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from idp.federation.config import APPLE_SECRET_MAX_LIFETIME


class AppleClientSecret:
    def __init__(self, *, team_id: str, key_id: str, client_id: str, audience: str,
                 private_key_pem: str, lifetime: int, clock: Callable[[], float]) -> None:
        if not 60 <= lifetime <= APPLE_SECRET_MAX_LIFETIME:
            raise ValueError(f"lifetime must be 60..{APPLE_SECRET_MAX_LIFETIME} s")
        try:
            key = ECKey.import_key(private_key_pem)
        except (JoseError, ValueError, TypeError):
            raise ValueError("the Apple private key is not a PEM EC key") from None
        if key.curve_name != "P-256" or not key.is_private:
            raise ValueError("the Apple private key must be a private P-256 key")
        self._key = key
        self._team_id, self._key_id, self._client_id = team_id, key_id, client_id
        self._audience, self._lifetime, self._clock = audience, lifetime, clock
        # Regenerate while a tenth of the lifetime (at least a minute) is left, so a secret
        # never expires in flight.
        self._margin = max(60, lifetime // 10)
        self._value: str | None = None
        self._expires_at = 0

    def get(self) -> str:
        now = int(self._clock())
        if self._value is None or now >= self._expires_at - self._margin:
            self._expires_at = now + self._lifetime
            self._value = jwt.encode(
                {"alg": "ES256", "kid": self._key_id},
                {"iss": self._team_id, "iat": now, "exp": self._expires_at,
                 "aud": self._audience, "sub": self._client_id},
                self._key, algorithms=["ES256"])
        return self._value

    def invalidate(self) -> None:
        self._value = None
