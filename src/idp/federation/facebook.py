"""Facebook Login, classic OAuth 2.0 code flow plus the Graph API (federation.md §3).

After the code exchange (requirement 12):
1. `debug_token` with our app token must say the user token is valid, was issued to *our*
   app id, and names a user (this refuses tokens minted for another app);
2. `/me` is read with `appsecret_proof` = hex HMAC-SHA256(app secret, access token) (§3.1).

The identity is keyed (facebook:{app id}, ASID) (requirement 14). Facebook's email is never
treated as verified (requirement 22); picture URLs expire (requirement 37); the granted
permissions are `debug_token`'s `scopes` (requirement 38).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from idp.federation.base import OidcUpstream, Transaction
from idp.federation.callback import AuthorizationCode
from idp.federation.claims import map_claims, optional_str
from idp.federation.errors import (
    InvalidIdToken,
    InvalidUpstreamToken,
    TokenRequestFailed,
    UpstreamUnavailable,
)
from idp.federation.facebook_signed import SignedRequest, parse_signed_request
from idp.federation.http import JsonResponse, request_json
from idp.federation.identity import UpstreamIdentity
from idp.federation.tokens import TokenResponse

log = logging.getLogger("idp.federation")
PROFILE_FIELDS = "id,name,first_name,last_name,email,picture"
EXPIRING_CLAIMS = frozenset({"picture"})  # Graph: "Profile picture URLs ... will expire."


def appsecret_proof(access_token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode("utf-8"), access_token.encode("utf-8"),
                    hashlib.sha256).hexdigest()


class FacebookUpstream(OidcUpstream):
    uses_nonce = False  # the classic flow has no ID token to carry one

    def format_scopes(self, scopes: tuple[str, ...]) -> str:
        return ",".join(scopes)  # §3.1: comma-separated permissions

    def reauthentication_params(self) -> dict[str, str]:
        # Facebook Login: `auth_type=reauthenticate` asks for the Facebook password again.
        # Nothing in the classic flow's answer shows that it did: there is no ID token, and
        # debug_token (§3.1) carries no authentication time. This cannot be verified here.
        return {"auth_type": "reauthenticate"}

    @property
    def graph(self) -> str:
        assert self.config.graph_api_url is not None  # set by the facebook preset
        return self.config.graph_api_url.rstrip("/")

    def _app_token(self) -> str:
        return f"{self.config.client_id}|{self.client_secret()}"

    async def _graph(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        response = await request_json(self._http, method, f"{self.graph}{path}", params=params)
        if response.status >= 500 or response.status == 429:
            # An outage or throttling, not a verdict on the token: worth retrying later.
            raise UpstreamUnavailable(f"Graph unavailable ({_code(response)})")
        if not response.ok or "error" in response.body:
            raise InvalidUpstreamToken(f"Graph refused {path.split('?')[0]} ({_code(response)})")
        return response.body

    async def token_request(self, data: dict[str, str]) -> TokenResponse:
        try:
            return await super().token_request(data)
        except TokenRequestFailed as exc:
            # Graph errors are objects, not RFC 6749 codes; the code exchange simply failed.
            raise TokenRequestFailed("invalid_grant" if exc.error == "unknown_error"
                                     else exc.error) from None

    async def complete(self, callback: AuthorizationCode,
                       transaction: Transaction) -> UpstreamIdentity:
        tokens = await self.exchange_code(callback.code, transaction)
        debug = await self.debug_token(tokens.access_token)
        profile = await self.me(tokens.access_token)
        if profile.get("id") != debug["user_id"]:
            raise InvalidUpstreamToken("/me answered for another user than debug_token")
        return self.facebook_identity(debug, profile)

    async def debug_token(self, access_token: str) -> dict[str, Any]:
        """Requirement 12: `data.app_id` is ours, `data.is_valid` true, `data.user_id` set."""
        body = await self._graph("GET", "/debug_token", {
            "input_token": access_token, "access_token": self._app_token()})
        data = body.get("data")
        if not isinstance(data, dict):
            raise InvalidUpstreamToken("debug_token answered without data")
        if str(data.get("app_id")) != self.config.client_id:
            raise InvalidUpstreamToken("the access token was issued to another app")
        if data.get("is_valid") is not True:
            raise InvalidUpstreamToken("the access token is not valid")
        if optional_str(data.get("user_id")) is None:
            raise InvalidUpstreamToken("the access token names no user")
        return data

    async def me(self, access_token: str) -> dict[str, Any]:
        return await self._graph("GET", "/me", {
            "fields": PROFILE_FIELDS, "access_token": access_token,
            "appsecret_proof": appsecret_proof(access_token, self.client_secret())})

    def facebook_identity(self, debug: dict[str, Any],
                          me: dict[str, Any]) -> UpstreamIdentity:
        picture = me.get("picture")
        picture_data = picture.get("data") if isinstance(picture, dict) else None
        profile = {
            "name": optional_str(me.get("name")),
            "given_name": optional_str(me.get("first_name")),
            "family_name": optional_str(me.get("last_name")),
            "picture": optional_str(picture_data.get("url"))
            if isinstance(picture_data, dict) else None,
        }
        scopes = debug.get("scopes")
        mapped = map_claims(profile, self.config.claim_mappings)
        return UpstreamIdentity(
            alias=self.config.alias, namespace=self.config.namespace,
            subject=str(debug["user_id"]),
            # Requirement 22: Facebook does not vouch for its emails (§3.4).
            email=optional_str(me.get("email")), email_verified=False,
            email_authoritative=False,
            claims=mapped,
            raw={**profile, "id": me.get("id"),
                 "picture_is_silhouette": bool(picture_data.get("is_silhouette"))
                 if isinstance(picture_data, dict) else None},
            granted_scopes=frozenset(s for s in scopes if isinstance(s, str))
            if isinstance(scopes, list) else frozenset(),
            expiring_claims=frozenset(m.attribute for m in self.config.claim_mappings
                                      if m.claim in EXPIRING_CLAIMS and m.attribute in mapped),
        )

    async def validate_limited_login_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Limited Login (§3.3): an OIDC ID token, RS256 via Facebook's JWKS, `iss` in the
        configured set, `aud` our app id, and the nonce the app sent."""
        if not nonce:
            raise InvalidIdToken("a Limited Login token needs the app's nonce")
        return await self.validate_id_token(id_token, nonce)

    async def revoke_permissions(self, asid: str) -> None:
        """Requirement 31 (client part): `DELETE /{asid}/permissions` with the app token."""
        if not asid.isdigit():
            raise ValueError("an app-scoped user id is numeric")
        body = await self._graph("DELETE", f"/{asid}/permissions",
                                 {"access_token": self._app_token()})
        if body.get("success") is not True:
            raise UpstreamUnavailable("Facebook did not confirm the permission removal")

    def parse_signed_request(self, signed_request: str) -> SignedRequest:
        """Requirements 29, 30: a deauthorize or data-deletion `signed_request`."""
        return parse_signed_request(signed_request, self.client_secret())


def _code(response: JsonResponse) -> str:
    error = response.body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return f"status {response.status}, code {code}" if code is not None else \
        f"status {response.status}"
