"""An upstream's signing keys, cached per provider (requirement 9).

* Keys are reused for the `Cache-Control: max-age` the upstream sent (Google rotates its keys
  and asks for this, federation.md §1.1); without one, for `DEFAULT_TTL`.
* A token signed with an unknown `kid` (the upstream rotated) fetches the set again at once,
  but at most once per `REFETCH_INTERVAL` seconds, so garbage `kid`s cannot hammer the upstream.
* Fail closed: keys whose cache time has passed are not used when a fresh fetch fails.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from idp.crypto.client_keys import ClientKey, ClientKeyError, import_client_keys, select_key
from idp.federation.errors import InvalidIdToken, UpstreamUnavailable
from idp.federation.http import JsonResponse

DEFAULT_TTL = 3600
MAX_TTL = 86_400
REFETCH_INTERVAL = 60
FAILURE_BACKOFF = 10

Fetch = Callable[[str], Awaitable[JsonResponse]]


class JwksCache:
    def __init__(self, fetch: Fetch, clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._uri: str | None = None
        self._keys: list[ClientKey] = []
        self._expires_at = -math.inf
        self._refetched_at = -math.inf
        self._failed_at = -math.inf
        self._lock = asyncio.Lock()

    async def key_for(self, uri: str, kid: str | None, alg: str) -> ClientKey:
        """The one key that may verify a JWS with this header."""
        async with self._lock:
            now = self._clock()
            if uri != self._uri or now >= self._expires_at:
                await self._refresh(uri, now)
            key = select_key(self._keys, kid, alg)
            if key is None and kid is not None and now - self._refetched_at >= REFETCH_INTERVAL:
                # The upstream may have rotated since we cached its set: look once more.
                self._refetched_at = now
                await self._refresh(uri, now)
                key = select_key(self._keys, kid, alg)
        if key is None:
            raise InvalidIdToken("no upstream key matches the token's kid and alg")
        return key

    async def _refresh(self, uri: str, now: float) -> None:
        if now - self._failed_at < FAILURE_BACKOFF:
            raise UpstreamUnavailable("the upstream key set failed to load moments ago")
        try:
            response = await self._fetch(uri)
            if response.status != 200:
                raise UpstreamUnavailable(f"key set answered status {response.status}")
            keys = import_client_keys(response.body)
        except (UpstreamUnavailable, ClientKeyError) as exc:
            self._failed_at = now
            if uri != self._uri or now >= self._expires_at:
                self._keys, self._expires_at = [], -math.inf  # nothing usable: fail closed
            raise UpstreamUnavailable(f"upstream key set unusable: {exc}") from None
        ttl = DEFAULT_TTL if response.max_age is None else min(response.max_age, MAX_TTL)
        self._uri, self._keys, self._expires_at = uri, keys, now + ttl
