"""Google (federation.md §1): a certified-style OIDC upstream with two quirks.

* The ID token's `iss` is `https://accounts.google.com` or the legacy `accounts.google.com`;
  both are accepted (the config preset's allowed set), and the identity is keyed under the one
  namespace `https://accounts.google.com` whichever arrived (requirement 14).
* Since 2026 Google appends `iss` to the authorization response without advertising it (§1.3):
  a present `iss` must be exactly `https://accounts.google.com`, which the shared callback check
  enforces under the `if_advertised` policy.

`email_verified` alone does not make Google the owner of an address (§1.6): only Gmail
addresses and a Workspace domain named by the `hd` claim do (`authority.email_is_authoritative`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from idp.federation.authority import email_is_authoritative
from idp.federation.base import OidcUpstream, Transaction
from idp.federation.callback import AuthorizationCode
from idp.federation.claims import optional_str
from idp.federation.errors import InvalidIdToken
from idp.federation.identity import UpstreamIdentity
from idp.federation.tokens import TokenResponse

__all__ = ["GoogleUpstream", "email_is_authoritative"]

# Google's token response names the email and profile scopes by their legacy URLs [K].
SCOPE_ALIASES = {
    "https://www.googleapis.com/auth/userinfo.email": "email",
    "https://www.googleapis.com/auth/userinfo.profile": "profile",
}


class GoogleUpstream(OidcUpstream):
    # Google's /revoke takes the token alone (federation.md §1.7).
    revocation_client_auth = False

    def authorization_params(self, scopes: tuple[str, ...]) -> dict[str, str]:
        # §1.2: `hd` in the request is only a hint for the account chooser; the claim is checked.
        hosted = self.config.hosted_domain
        return {"hd": hosted} if hosted else {}

    def reauthentication_params(self) -> dict[str, str]:
        # Google refuses `prompt=login` (§1.2: prompt is none|consent|select_account, and an
        # unknown value is an invalid_request error page), so only OIDC Core's `max_age=0`:
        # Google then asks again and sends `auth_time` (the project's "session age claims"
        # setting must be on). A Google that did not ask again is refused by the auth_time
        # check all the same.
        return {"max_age": "0"}

    def build_identity(self, claims: dict[str, Any], tokens: TokenResponse,
                       transaction: Transaction, callback: AuthorizationCode) -> UpstreamIdentity:
        hosted = self.config.hosted_domain
        # §1.2, Google's guidance: validate the `hd` claim against the expected domain.
        if hosted is not None and optional_str(claims.get("hd")) != hosted:
            raise InvalidIdToken("the Google account is not in the configured hosted domain")
        identity = super().build_identity(claims, tokens, transaction, callback)
        # Requirement 38: the granted scopes, under the names they were requested by.
        granted = frozenset(SCOPE_ALIASES.get(s, s) for s in identity.granted_scopes)
        # Requirement 31: the access token revokes the grant when no refresh token came.
        return dataclasses.replace(identity, granted_scopes=granted,
                                   access_token=tokens.access_token)
