"""The client class for each upstream type."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from idp.federation.apple import AppleUpstream
from idp.federation.base import OidcUpstream
from idp.federation.config import UpstreamConfig
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.oidc import GenericOidcUpstream

_CLASSES: dict[str, type[OidcUpstream]] = {
    "google": GoogleUpstream, "apple": AppleUpstream, "facebook": FacebookUpstream,
    "oidc": GenericOidcUpstream,
}


def create_upstream(config: UpstreamConfig, http: httpx.AsyncClient,
                    clock: Callable[[], float] = time.time) -> OidcUpstream:
    """One client per registration, kept for the process: it holds the discovery, JWKS and
    Apple client-secret caches."""
    return _CLASSES[config.type](config, http, clock)
