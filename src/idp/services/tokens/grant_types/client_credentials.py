"""RFC 6749 §4.4: a confidential client obtains an access token for itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp import errors
from idp.domain import ClientConfig
from idp.protocol.scopes import MAX_SCOPE_LENGTH, USER_SCOPES, parse_scope
from idp.services.context import Context
from idp.services.tokens.grant_types import grant_handler, token_response
from idp.services.tokens.issuance import Subject, mint_access_token


@grant_handler("client_credentials")
async def client_credentials_grant(ctx: Context, client: ClientConfig, form: Mapping[str, str]
                                   ) -> dict[str, Any]:
    # RFC 6749 §4.4: confidential clients only.
    if client.is_public:
        raise errors.UnauthorizedClient("Public clients cannot use client_credentials")
    scopes = api_scopes(form.get("scope"), client)
    ring = await ctx.keys.ring()
    # No unit of work at all: the token has no row (idp.services.tokens.issuance).
    # RFC 9068 §2.2: with no end-user, sub is the client's own identifier.
    token = mint_access_token(ctx, ring, client, Subject(client.client_id), scopes, None)
    # No refresh token (RFC 6749 §4.4.3) and no ID token: there is no end-user.
    return token_response(token, ctx.settings.access_token_ttl, scopes)


def api_scopes(raw: str | None, client: ClientConfig) -> list[str]:
    allowed = [s for s in client.allowed_scopes if s not in USER_SCOPES]
    if raw is None:
        return allowed
    if len(raw) > MAX_SCOPE_LENGTH:
        raise errors.InvalidScope("scope is too long")
    requested = parse_scope(raw)
    bad = [s for s in requested if s not in allowed]
    if bad:
        raise errors.InvalidScope(f"scope {bad[0]} is not allowed for this client")
    return requested
