"""UserInfo (OIDC Core §5.3): claims of the granted scopes, for a live access token."""

from __future__ import annotations

from typing import Any

from idp import errors
from idp.protocol.claims import release, user_claims
from idp.services.consent.grants import grant_consent_claim
from idp.services.context import Context
from idp.services.profile import access_log
from idp.services.profile.cache import current_schema
from idp.services.profile.release import profile_claims
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
    # Issue 16 items 2 and 4: custom attributes for granted purposes, and the release on
    # record (no write when today's is already).
    body = profile_claims(await current_schema(ctx), user, grant, scopes, "userinfo",
                          claims_param, bearer.standing, body)
    await access_log.record(ctx, access_log.release(user.id, grant.client_id, "userinfo",
                                                    body, ctx.now()))
    # OIDC Core §5.3.2: the ID token's `sub` (a pairwise client's own, §8.1).
    return {"sub": bearer.sub, **body,
            "consent": grant_consent_claim(grant, scopes, bearer.standing)}
