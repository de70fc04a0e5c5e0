"""Token introspection (RFC 7662), answered from live state: a revoked token, an expired one
or one whose grant was withdrawn is inactive at once, before its JWT expires."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp import errors
from idp.protocol.dpop import bound_key
from idp.services.consent.grants import grant_consent_claim
from idp.services.context import Context
from idp.services.tokens.client_auth import authenticated_client
from idp.services.tokens.state import find_token, live_grant, presented_claims
from idp.store.models import Grant

INACTIVE: dict[str, Any] = {"active": False}


async def introspect(ctx: Context, form: Mapping[str, str], repeated: set[str],
                     authorization: str | None) -> dict[str, Any]:
    client = await authenticated_client(ctx, form, repeated, authorization)
    # RFC 7662 §2.1: the endpoint requires authorization; a public client has none to give.
    if client.is_public:
        raise errors.InvalidClient("Public clients may not introspect tokens")
    token = form.get("token")
    if not token:
        raise errors.InvalidRequest("token is missing")
    now = ctx.now()
    claims = await presented_claims(ctx, token)
    # One read answers it: the token with its grant and user.
    async with ctx.db.statements() as connection:
        found = await find_token(ctx, connection, token, form.get("token_type_hint"),
                                 claims)
    if found is None:
        return INACTIVE
    # Refresh tokens are the business of the client that holds them alone.
    if found.kind == "refresh_token" and found.client_id != client.client_id:
        return INACTIVE
    grant = live_grant(found, now)
    if grant is False:
        return INACTIVE
    scopes = found.scopes
    body: dict[str, Any] = {"active": True, "scope": " ".join(scopes),
                            "client_id": found.client_id, "iss": ctx.settings.issuer}
    if found.refresh is not None:
        record = found.refresh
        # The `sub` this client knows the account by (OIDC Core §8.1 for pairwise clients).
        body.update(sub=found.subject, exp=record.expires_at, iat=record.created_at,
                    aud=record.client_id)
        body["token_type"] = "refresh_token"
        if record.dpop_jkt is not None:
            body["cnf"] = {"jkt": record.dpop_jkt}
    else:
        claims = found.claims
        body.update(sub=claims.get("sub"), exp=claims.get("exp"), iat=claims.get("iat"),
                    aud=claims.get("aud"), jti=claims.get("jti"))
        jkt = bound_key(claims)
        # RFC 9449 §6.2: a bound token's key, for the resource server to check the proof.
        body["token_type"] = "DPoP" if jkt is not None else "Bearer"
        if jkt is not None:
            body["cnf"] = {"jkt": jkt}
    if isinstance(grant, Grant):
        body["consent"] = grant_consent_claim(grant, scopes, found.standing)
    return body
