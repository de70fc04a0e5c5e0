"""In-memory cache of clients' public keys: registered inline, or published at a `jwks_uri`.

security.md §0 item 18 / REL-06: a key set is reused for `TTL_SECONDS`; an assertion signed
with an unknown `kid` (the client rotated its key) fetches it again at once, but at most once a
minute per client, so garbage `kid`s cannot make us hammer the client's server. A failed fetch
is not retried for `FAILURE_BACKOFF_SECONDS`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from idp.crypto.client_keys import ClientKey, ClientKeyError, has_kid, import_client_keys
from idp.net.fetch import FetchError

TTL_SECONDS = 300
REFETCH_INTERVAL_SECONDS = 60
FAILURE_BACKOFF_SECONDS = 10

Fetch = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass
class _Entry:
    uri: str
    keys: list[ClientKey] | None = None
    fetched_at: float = -math.inf
    refetched_at: float = -math.inf
    failed_at: float = -math.inf
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ClientKeyCache:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._inline: dict[str, tuple[dict[str, Any], list[ClientKey]]] = {}

    def registered(self, client_id: str, jwks: dict[str, Any]) -> list[ClientKey]:
        """The keys of a registered `jwks`, imported once (ARCHITECTURE: hot paths stay cheap)."""
        cached = self._inline.get(client_id)
        if cached is not None and cached[0] == jwks:
            return cached[1]
        keys = import_client_keys(jwks)
        self._inline[client_id] = (jwks, keys)
        return keys

    async def published(self, client_id: str, uri: str, kid: str | None, now: float,
                        fetch: Fetch) -> list[ClientKey]:
        """The keys published at the client's `jwks_uri`; FetchError when they cannot be had."""
        entry = self._entries.get(client_id)
        if entry is None or entry.uri != uri:
            entry = self._entries[client_id] = _Entry(uri)
        async with entry.lock:
            if entry.keys is None or now - entry.fetched_at >= TTL_SECONDS:
                return await self._fetch(entry, now, fetch)
            if (kid is not None and not has_kid(entry.keys, kid)
                    and now - entry.refetched_at >= REFETCH_INTERVAL_SECONDS):
                entry.refetched_at = now
                return await self._fetch(entry, now, fetch)
            return entry.keys

    @staticmethod
    async def _fetch(entry: _Entry, now: float, fetch: Fetch) -> list[ClientKey]:
        if now - entry.failed_at < FAILURE_BACKOFF_SECONDS:
            raise FetchError("the last attempt failed moments ago")
        try:
            keys = import_client_keys(await fetch(entry.uri))
        except (FetchError, ClientKeyError) as exc:
            entry.failed_at = now
            raise FetchError(str(exc)) from None
        entry.keys, entry.fetched_at = keys, now
        return keys
