"""Registered clients held in memory for the endpoints apps call on every request (token,
introspection, revocation) and for the sign-in's requests (`/authorize`, the password
post): a client lookup per request was a database round trip for a row that almost never
changes.

An entry is trusted for `Settings.client_cache_seconds`. A miss reads the database and is not
remembered (unknown ids cannot fill the cache), and a presented secret that does not match the
cached registration is checked once more against the database, so a client registered or
given a new secret a moment ago is never refused, and a removed one (or a redirect URI taken
off it) stops within `client_cache_seconds`. A change made through this process (the admin
API, dynamic client management) drops its entry at once (`forget`).
"""

from __future__ import annotations

from collections.abc import Callable

from idp.domain import ClientConfig
from idp.store import clients as client_store
from idp.store.db import Database

MAX_ENTRIES = 10_000


class ClientCache:
    def __init__(self, db: Database, ttl: float, clock: Callable[[], float]) -> None:
        self._db = db
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, ClientConfig]] = {}

    async def get(self, client_id: str, *, fresh: bool = False) -> ClientConfig | None:
        """The registration of `client_id`, or None; `fresh` skips the cached copy."""
        now = self._clock()
        entry = self._entries.get(client_id)
        if not fresh and entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        async with self._db.autocommit() as session:
            client = await client_store.get_client(session, client_id)
        if client is None:
            self._entries.pop(client_id, None)
            return None
        if self._ttl > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[client_id] = (now, client)
        return client

    def forget(self, client_id: str) -> None:
        """Drop this process's copy after a change made here (other processes follow within
        the cache time)."""
        self._entries.pop(client_id, None)

    def cached_ids(self) -> list[str]:
        return sorted(self._entries)
