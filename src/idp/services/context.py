"""What every use case needs, built once per process by `create_app` or the CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import httpx

from idp.crypto.keys import derive_key
from idp.crypto.passwords import PasswordService
from idp.domain import ClientConfig
from idp.federation.base import OidcUpstream
from idp.federation.http import new_upstream_client
from idp.net.fetch import new_http_client
from idp.protocol.pairwise import pairwise_subject
from idp.services.tokens.client_cache import ClientCache
from idp.services.tokens.client_keys import ClientKeyCache
from idp.services.tokens.signing_keys import KeyManager
from idp.settings import Settings
from idp.store.db import Database, create_engine


@dataclass
class Context:
    settings: Settings
    db: Database
    passwords: PasswordService
    keys: KeyManager
    clients: ClientCache
    clock: Callable[[], float] = field(default=time.time)

    # Set by the running dispatcher: wakes it as soon as a change wrote to the outbox.
    outbox_signal: Callable[[], None] | None = None

    # Outbound requests to client-supplied URLs (idp.net.fetch); tests put a mock transport here.
    http_transport: httpx.AsyncBaseTransport | None = None
    client_keys: ClientKeyCache = field(default_factory=ClientKeyCache)
    _http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    # Requests to upstream identity providers (operator-configured URLs); tests put fakes here.
    upstream_transport: httpx.AsyncBaseTransport | None = None
    upstream_clients: dict[str, OidcUpstream] = field(default_factory=dict)
    _upstream_http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def now(self) -> int:
        return int(self.clock())

    def http(self) -> httpx.AsyncClient:
        """The one shared client for client-supplied URLs, created on first use."""
        if self._http is None:
            self._http = new_http_client(self.http_transport)
        return self._http

    def upstream_http(self) -> httpx.AsyncClient:
        if self._upstream_http is None:
            self._upstream_http = new_upstream_client(self.upstream_transport)
        return self._upstream_http

    def subject_of(self, client: ClientConfig, user_id: str) -> str:
        """The `sub` this client knows the account by: the account id, or for a pairwise
        client its sector's own (OIDC Core §8.1). Wherever a client sees a subject."""
        return self.subject_in(client.sector_identifier, user_id)

    def subject_in(self, sector: str | None, user_id: str) -> str:
        if sector is None:
            return user_id
        return pairwise_subject(_pairwise_key(self.settings.resolved_key_secret()), sector,
                                user_id)

    def notify_outbox(self) -> None:
        if self.outbox_signal is not None:
            self.outbox_signal()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._upstream_http is not None:
            await self._upstream_http.aclose()
            self._upstream_http = None
        await self.db.dispose()
        self.passwords.close()


@lru_cache(maxsize=4)
def _pairwise_key(secret: str) -> bytes:
    # Derived from the operator's secret for this one use; never leaves the process.
    return derive_key(secret, "pairwise-subject")


def build_context(settings: Settings, clock: Callable[[], float] = time.time) -> Context:
    db = Database(create_engine(settings.database_url, settings.db_pool_size))
    passwords = PasswordService(
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        settings.argon2_max_concurrency,
    )
    return Context(settings, db, passwords, KeyManager(settings, db, clock),
                   ClientCache(db, settings.client_cache_seconds, clock), clock)
