"""The token endpoint (RFC 6749 §3.2): authenticate the client, then the handler registered
for the `grant_type` (see `idp.services.tokens.grant_types`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from idp import errors
from idp.observability import metrics
from idp.services.context import Context
from idp.services.profile.release import issuing
from idp.services.tokens.client_auth import authenticated_client
from idp.services.tokens.dpop import BOUND_KEY, bind_token_request
from idp.services.tokens.grant_types import GRANT_HANDLERS, load_handlers

load_handlers()


async def exchange(ctx: Context, form: Mapping[str, str], repeated: set[str],
                   authorization: str | None, dpop: Sequence[str] = ()) -> dict[str, Any]:
    """`dpop`: the request's DPoP headers (RFC 9449 §5)."""
    client = await authenticated_client(ctx, form, repeated, authorization)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise errors.InvalidRequest("grant_type is missing")
    handler = GRANT_HANDLERS.get(grant_type)
    if handler is None:
        raise errors.UnsupportedGrantType(f"grant_type {grant_type[:40]} is not supported")
    if grant_type not in client.grant_types:
        raise errors.UnauthorizedClient("The client may not use this grant type")
    # RFC 9449 §5: whatever the grant, a valid proof binds what is issued to its key.
    jkt = await bind_token_request(ctx, client, dpop) if (
        dpop or client.dpop_bound_access_tokens) else None
    bound = BOUND_KEY.set(jkt) if jkt is not None else None
    try:
        # The profile schema ID tokens release by; their releases go on record once the
        # tokens are committed (issue 16 items 2 and 4).
        async with issuing(ctx):
            body = await handler(ctx, client, form)
    except errors.OAuthError as error:
        metrics.TOKENS.labels(grant_type, error.error).inc()
        raise
    finally:
        if bound is not None:
            BOUND_KEY.reset(bound)
    if jkt is not None and "access_token" in body:
        # RFC 9449 §5.1: the access token is DPoP-bound (it carries cnf.jkt).
        body["token_type"] = "DPoP"
    metrics.TOKENS.labels(grant_type, "issued").inc()
    return body
