"""UserInfo (OIDC Core §5.3): claims of the granted scopes, for a live access token."""

from __future__ import annotations

from typing import Any

from idp import errors
from idp.protocol.claims import release, user_claims
from idp.services.consent.grants import grant_consent_claim
from idp.services.context import Context
from idp.services.tokens.bearer import authenticate_bearer
from idp.services.tokens.dpop import BEARER, Presentation


async def userinfo(ctx: Context, access_token: str, presentation: Presentation = BEARER
                   ) -> dict[str, Any]:
    bearer = await authenticate_bearer(ctx, access_token, presentation)
    grant, user, scopes = bearer.grant, bearer.user, bearer.scopes
    if "openid" not in scopes:
        raise errors.InsufficientScope("The access token was not granted the openid scope")
    available = user_claims(user.email, user.email_verified, user.profile, user.updated_at)
    # OIDC Core §5.5: the `claims` request's userinfo member, carried in the token.
    requested = bearer.claims.get("userinfo_claims")
    claims_param = {"userinfo": requested} if isinstance(requested, dict) else None
    body = release(available, scopes, grant.claims, "userinfo", claims_param)
    return {"sub": user.id, **body, "consent": grant_consent_claim(grant, scopes)}
