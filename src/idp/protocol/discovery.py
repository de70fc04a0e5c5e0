"""Provider metadata: OIDC Discovery 1.0 §3 and RFC 8414 §2. It advertises exactly what the
code supports; a test compares it with the behaviour."""

from __future__ import annotations

from typing import Any

from idp.crypto.client_keys import CLIENT_SIGNING_ALGS
from idp.crypto.keys import SUPPORTED_ALGS
from idp.protocol.device import DEVICE_CODE_GRANT
from idp.protocol.dpop import DPOP_SIGNING_ALGS
from idp.protocol.pairwise import SUBJECT_TYPES
from idp.protocol.scopes import SUPPORTED_CLAIMS, SUPPORTED_SCOPES

TOKEN_ENDPOINT_AUTH_METHODS = (
    "client_secret_basic", "client_secret_post", "private_key_jwt", "none")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT)
ACR_PASSWORD = "urn:idp:acr:password"
# A sign-in through an upstream provider: its strength is the provider's, not ours to claim.
ACR_FEDERATED = "urn:idp:acr:federated"
# More than one factor of ours (amr "mfa", RFC 8176 §2): password or upstream, then a code.
ACR_MFA = "urn:idp:acr:mfa"


def oauth_metadata(issuer: str, registration: bool = False, require_par: bool = False,
                   languages: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    """`registration`: dynamic client registration (RFC 7591) is on; `require_par`: every
    authorization request must be pushed first (RFC 9126 §5); `languages`: those with a
    catalog (idp.locales), the default first."""
    metadata = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "revocation_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "introspection_endpoint": f"{issuer}/introspect",
        "introspection_endpoint_auth_methods_supported": [
            m for m in TOKEN_ENDPOINT_AUTH_METHODS if m != "none"],
        "introspection_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        # private_key_jwt assertions (RFC 7523); never none or HS*.
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1: DPoP-bound tokens, proofs signed with these.
        "dpop_signing_alg_values_supported": list(DPOP_SIGNING_ALGS),
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": f"{issuer}/docs",
        # RFC 8414 §2: the languages of the pages (one catalog each).
        "ui_locales_supported": list(languages),
        "pushed_authorization_request_endpoint": f"{issuer}/par",
        # RFC 8628 §4
        "device_authorization_endpoint": f"{issuer}/device_authorization",
        "require_pushed_authorization_requests": require_par,
    }
    if registration:
        metadata["registration_endpoint"] = f"{issuer}/register"
    return metadata


def openid_metadata(issuer: str, registration: bool = False, require_par: bool = False,
                    languages: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    return {
        **oauth_metadata(issuer, registration, require_par, languages),
        # OIDC Discovery §3: the languages of what the customer is shown and sent about their
        # claims (the consent page's words, the mails); the same catalogs.
        "claims_locales_supported": list(languages),
        "userinfo_endpoint": f"{issuer}/userinfo",
        "end_session_endpoint": f"{issuer}/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # OIDC Core §8: pairwise for clients registered so (§8.1).
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        # `consent`: what the token was issued under (README, "The consent claim").
        "claims_supported": ["iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
                             "azp", "at_hash", "sid", "consent", *SUPPORTED_CLAIMS],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": [ACR_PASSWORD, ACR_FEDERATED, ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claim_types_supported": ["normal"],
        "display_values_supported": ["page"],
    }
