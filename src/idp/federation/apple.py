"""Sign in with Apple (federation.md §2): OIDC-like, with these quirks handled here.

* `response_mode=form_post` whenever `name` or `email` is asked for (§2.3); the callback is
  then a cross-site POST whose form may carry `user`, a JSON string sent on the first
  authorization only. It is parsed for the name and never used as identity or to replace the
  ID token's email (requirement 36).
* The client secret is an ES256 JWT we sign (`apple_secret`, requirement 10); an
  `invalid_client` answer regenerates it and retries once.
* No PKCE (not advertised, §2.1). `email_verified`/`is_private_email` are strings or booleans
  (requirement 11). A missing `nonce` is refused when `nonce_supported` is true; native flows
  compare against SHA-256(raw nonce) (requirement 8).
* The identity is keyed (apple:{team id}, sub) (requirement 14); a token for a client id that
  is not our team's fails the audience check (requirement 18); `transfer_sub` is kept.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from idp.crypto.client_keys import ClientKey
from idp.federation.apple_events import AppleEvent, verify_notification
from idp.federation.apple_secret import AppleClientSecret
from idp.federation.base import OidcUpstream, Transaction
from idp.federation.callback import AuthorizationCode
from idp.federation.claims import normalise_bool, optional_str
from idp.federation.config import UpstreamConfig
from idp.federation.errors import InvalidIdToken, TokenRequestFailed, UpstreamUnavailable
from idp.federation.identity import UpstreamIdentity
from idp.federation.idtoken import check_nonce
from idp.federation.tokens import TokenResponse

MAX_USER_JSON = 4096


@dataclass(frozen=True)
class AppleUser:
    """The first-authorization `user` form field: `{"name": {"firstName", "lastName"},
    "email"}`. The email here is informational only; the ID token's is the one used."""

    first_name: str | None
    last_name: str | None

    @property
    def full_name(self) -> str | None:
        parts = [p for p in (self.first_name, self.last_name) if p]
        return " ".join(parts) or None


def parse_apple_user(raw: str | None) -> AppleUser | None:
    """Best effort: a malformed `user` field loses the name, never the login."""
    if not raw or len(raw) > MAX_USER_JSON:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, dict):
        return None
    user = AppleUser(optional_str(name.get("firstName")), optional_str(name.get("lastName")))
    return user if user.full_name else None


class AppleUpstream(OidcUpstream):
    def __init__(self, config: UpstreamConfig, http: httpx.AsyncClient,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, http, clock)
        assert config.apple_team_id and config.apple_key_id and config.apple_private_key
        self._secret = AppleClientSecret(
            team_id=config.apple_team_id, key_id=config.apple_key_id,
            client_id=config.client_id, audience=config.issuer,
            private_key_pem=config.apple_private_key.get_secret_value(),
            lifetime=config.apple_client_secret_ttl, clock=clock)

    def authorization_params(self, scopes: tuple[str, ...]) -> dict[str, str]:
        # §2.3: "response_mode must be form_post when name or email scope is requested".
        return {"response_mode": "form_post"} if {"name", "email"} & set(scopes) else {}

    def reauthentication_params(self) -> dict[str, str]:
        # §2.3: Apple's authorization request has no `prompt` or `max_age`; its web flow asks
        # for the Apple ID (password, or Touch ID / Face ID on the device) each time. Not
        # relied upon: Apple's ID token carries `auth_time` (§2.5), and the shared check
        # refuses one that predates this round trip.
        return {}

    def client_secret(self) -> str:
        return self._secret.get()

    async def token_request(self, data: dict[str, str]) -> TokenResponse:
        try:
            return await super().token_request(data)
        except TokenRequestFailed as exc:
            if exc.error != "invalid_client":
                raise
        # §2.2: a bad or expired secret gives invalid_client; sign a new one, once.
        self._secret.invalidate()
        return await super().token_request(data)

    def check_nonce(self, claims: dict[str, Any], expected: str, *, hashed: bool) -> None:
        # §2.5: "if you sent a nonce and the token has none, then with nonce_supported=true you
        # must fail; otherwise the nonce may be treated as optional".
        if "nonce" not in claims and not normalise_bool(claims.get("nonce_supported")):
            return
        if "nonce" not in claims:
            raise InvalidIdToken("the ID token has no nonce although Apple supports it")
        check_nonce(claims, expected, hashed=hashed)

    async def validate_native_id_token(self, id_token: str, raw_nonce: str) -> dict[str, Any]:
        """An ID token an iOS app obtained: the app sent SHA-256(raw nonce) to Apple."""
        return await self.validate_id_token(id_token, raw_nonce, hashed_nonce=True)

    def build_identity(self, claims: dict[str, Any], tokens: TokenResponse,
                       transaction: Transaction, callback: AuthorizationCode) -> UpstreamIdentity:
        user = parse_apple_user(callback.user)
        profile = dict(claims)
        profile.pop("name", None)
        if user is not None:
            profile.update(name=user.full_name, given_name=user.first_name,
                           family_name=user.last_name)
        identity = super().build_identity(profile, tokens, transaction, callback)
        granted = {"openid"} | ({"email"} if identity.email else set()) | (
            {"name"} if user is not None else set())
        return dataclasses.replace(
            identity,
            raw={**identity.raw, "is_private_email": normalise_bool(
                claims.get("is_private_email"))},
            granted_scopes=frozenset(granted),  # requirement 38: what arrived
            refresh_token=tokens.refresh_token,  # kept for /auth/revoke (requirement 31)
            transfer_sub=optional_str(claims.get("transfer_sub")),
        )

    async def revoke(self, token: str, token_type_hint: str | None = "refresh_token") -> None:
        """§2.8: POST /auth/revoke with our client credentials (requirement 31, client part);
        an `invalid_client` answer regenerates the secret and retries once."""
        try:
            await super().revoke(token, token_type_hint)
        except TokenRequestFailed as exc:
            if exc.error != "invalid_client":
                raise
            self._secret.invalidate()
            await super().revoke(token, token_type_hint)

    async def verify_notification(self, body: bytes | str) -> AppleEvent:
        """Requirement 27: a server-to-server notification, verified against Apple's JWKS."""
        jwks_uri = (await self.metadata()).jwks_uri
        if jwks_uri is None:
            raise UpstreamUnavailable("Apple publishes no JWKS")

        async def key_for(kid: str | None, alg: str) -> ClientKey:
            return await self._jwks.key_for(jwks_uri, kid, alg)

        return await verify_notification(body, issuer=self.config.issuer,
                                         audiences=self.config.audiences, key_for=key_for)
