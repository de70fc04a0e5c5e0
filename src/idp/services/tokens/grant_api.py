"""The Grant API for apps, modelled on FAPI Grant Management for OAuth 2.0 (draft): an app
reads or ends its own grant with an access token issued under it."""

from __future__ import annotations

from typing import Any

from idp import errors
from idp.services.consent.grants import grant_consent_claim, withdraw
from idp.services.context import Context
from idp.services.tokens.bearer import Bearer, authenticate_bearer


async def _own_grant(ctx: Context, access_token: str, grant_id: str) -> Bearer:
    bearer = await authenticate_bearer(ctx, access_token)
    if bearer.grant.id != grant_id:
        # Grant Management §5.4: a token of another grant may not see this one.
        raise errors.InsufficientScope("The access token was not issued under this grant")
    return bearer


async def read_grant(ctx: Context, access_token: str, grant_id: str) -> dict[str, Any]:
    bearer = await _own_grant(ctx, access_token, grant_id)
    grant = bearer.grant
    return {
        "grant_id": grant.id,
        "client_id": grant.client_id,
        "status": "active",
        "scopes": [{"scope": " ".join(grant.scopes)}],
        "claims": list(grant.claims),
        "purposes": list(grant.purposes),
        "declined": {"scopes": list(grant.declined_scopes),
                     "purposes": list(grant.declined_purposes)},
        "created_at": grant.created_at,
        "updated_at": grant.updated_at,
        "consent": grant_consent_claim(grant, standing=bearer.standing),
    }


async def end_grant(ctx: Context, access_token: str, grant_id: str) -> None:
    bearer = await _own_grant(ctx, access_token, grant_id)
    await withdraw(ctx, bearer.user.id, bearer.grant.client_id, channel=bearer.grant.channel,
                   method="grant management API")
