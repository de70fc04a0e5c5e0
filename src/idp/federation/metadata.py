"""An upstream's endpoints: its discovery document (OpenID Connect Discovery 1.0), cached,
with every explicitly configured URL taking precedence."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from idp.federation.config import UpstreamConfig, is_upstream_url
from idp.federation.errors import UpstreamUnavailable
from idp.federation.http import JsonResponse

DEFAULT_TTL = 3600
MAX_TTL = 86_400

Fetch = Callable[[str], Awaitable[JsonResponse]]


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    # RFC 9207 §3: the upstream promises `iss` in every authorization response.
    iss_parameter_supported: bool = False


class MetadataCache:
    def __init__(self, config: UpstreamConfig, fetch: Fetch, clock: Callable[[], float]) -> None:
        self._config = config
        self._fetch = fetch
        self._clock = clock
        self._value: ProviderMetadata | None = None
        self._expires_at = -math.inf
        self._lock = asyncio.Lock()

    async def get(self) -> ProviderMetadata:
        async with self._lock:
            now = self._clock()
            if self._value is None or now >= self._expires_at:
                document, ttl = await self._discover()
                self._value = _merge(self._config, document)
                self._expires_at = now + ttl
            return self._value

    async def _discover(self) -> tuple[dict[str, Any], float]:
        url = self._config.discovery_url
        if url is None:
            return {}, math.inf
        response = await self._fetch(url)
        if response.status != 200:
            raise UpstreamUnavailable(f"discovery answered status {response.status}")
        # OIDC Discovery §4.3: the issuer in the document MUST be identical to the one we
        # expect, or the document is not to be used.
        if response.body.get("issuer") != self._config.issuer:
            raise UpstreamUnavailable("discovery issuer differs from the configured issuer")
        ttl = DEFAULT_TTL if response.max_age is None else min(response.max_age, MAX_TTL)
        return response.body, ttl


def _merge(config: UpstreamConfig, document: dict[str, Any]) -> ProviderMetadata:
    def pick(name: str) -> str | None:
        explicit = getattr(config, name)
        if explicit is not None:
            return str(explicit)
        found = document.get(name)
        return found if isinstance(found, str) and is_upstream_url(found) else None

    authorization, token = pick("authorization_endpoint"), pick("token_endpoint")
    if authorization is None or token is None:
        raise UpstreamUnavailable("the upstream has no authorization or token endpoint")
    return ProviderMetadata(
        issuer=config.issuer,
        authorization_endpoint=authorization,
        token_endpoint=token,
        jwks_uri=pick("jwks_uri"),
        userinfo_endpoint=pick("userinfo_endpoint"),
        revocation_endpoint=pick("revocation_endpoint"),
        iss_parameter_supported=document.get(
            "authorization_response_iss_parameter_supported") is True,
    )
