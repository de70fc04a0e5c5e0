"""Grant handlers, registered by `grant_type` (RFC 6749 §4). Each handler validates first and
persists second, inside one unit of work, and returns the token response body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from idp.domain import ClientConfig
from idp.services.context import Context

GrantHandler = Callable[[Context, ClientConfig, Mapping[str, str]], Awaitable[dict[str, Any]]]
GRANT_HANDLERS: dict[str, GrantHandler] = {}


def grant_handler(grant_type: str) -> Callable[[GrantHandler], GrantHandler]:
    def register(handler: GrantHandler) -> GrantHandler:
        GRANT_HANDLERS[grant_type] = handler
        return handler

    return register


def token_response(access_token: str, ttl: int, scopes: list[str]) -> dict[str, Any]:
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": ttl,
            "scope": " ".join(scopes)}


def load_handlers() -> None:
    from idp.services.tokens.grant_types import (  # noqa: F401
        authorization_code,
        client_credentials,
        device_code,
        refresh_token,
    )
