"""One class per wire error code (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1; OIDC Core §3.1.2.6).

Errors carry their code, HTTP status and whether they may be sent to a client's redirect URI.
They become responses only in `idp.web.errors`. `error_description` never holds CR, LF, TAB or
markup (OIDC-18): descriptions are fixed strings written here or by the code that raises.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")  # RFC 6749 §5.2 NQSCHAR set


class OAuthError(Exception):
    error: str = "server_error"
    status_code: int = 400
    # May this error be delivered to a verified redirect_uri (RFC 6749 §4.1.2.1)?
    redirectable: bool = True
    default_description: str = ""
    # The authentication scheme a protected resource's challenge names (RFC 6750 §3; DPoP
    # for RFC 9449 §7.1).
    scheme: str = "Bearer"

    def __init__(self, description: str | None = None, *, redirectable: bool | None = None) -> None:
        text = description if description is not None else self.default_description
        self.description = _UNSAFE.sub(" ", text)
        if redirectable is not None:
            # An error found before the client and redirect_uri were verified is shown to the
            # end-user and never sent anywhere (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
            self.redirectable = redirectable
        super().__init__(f"{self.error}: {self.description}")


# RFC 6749 §4.1.2.1 / §5.2
class InvalidRequest(OAuthError):
    """The request is missing a required parameter, includes an invalid parameter value,
    includes a parameter more than once, or is otherwise malformed."""

    error = "invalid_request"


class ForgedForm(InvalidRequest):
    """A page's form post that we cannot tell from a cross-site request forgery (RFC 6749
    §10.12): it comes from another origin, or lacks this browser's CSRF token for the form.
    Shown on the error page with 403, never redirected."""

    status_code = 403
    redirectable = False


class InvalidClient(OAuthError):
    """Client authentication failed (unknown client, no client authentication included, or
    unsupported authentication method)."""

    error = "invalid_client"
    status_code = 401
    redirectable = False


class InvalidGrant(OAuthError):
    """The provided authorization grant is invalid, expired, revoked, does not match the
    redirection URI used in the authorization request, or was issued to another client."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """The client is not authorized to request an authorization code / use this grant type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """The authorization grant type is not supported by the authorization server."""

    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    """The authorization server does not support obtaining an authorization code using this
    method."""

    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    """The requested scope is invalid, unknown, or malformed."""

    error = "invalid_scope"


class AccessDenied(OAuthError):
    """The resource owner or authorization server denied the request."""

    error = "access_denied"
    default_description = "The end-user denied the request"


class ServerError(OAuthError):
    """The authorization server encountered an unexpected condition."""

    error = "server_error"
    status_code = 500
    # node-oidc-provider 7.1.0: server errors are shown, not redirected to clients.
    redirectable = False
    default_description = "An unexpected error occurred"


class TemporarilyUnavailable(OAuthError):
    """The authorization server is currently unable to handle the request."""

    error = "temporarily_unavailable"
    status_code = 503
    redirectable = False
    default_description = "The service is temporarily unavailable; retry later"


# OIDC Core §3.1.2.6
class InteractionRequired(OAuthError):
    error = "interaction_required"


class LoginRequired(OAuthError):
    error = "login_required"
    default_description = "End-user authentication is required"


class AccountSelectionRequired(OAuthError):
    error = "account_selection_required"


class ConsentRequired(OAuthError):
    error = "consent_required"
    default_description = "End-user consent is required"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"
    default_description = "Request objects are not supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"
    default_description = "request_uri is not supported"


class InvalidRequestUri(OAuthError):
    """The request_uri names no pushed request of this client that is still waiting (RFC
    9126 §4): unknown, already used, expired or pushed by another client. Shown to the
    end-user: without the request there is no verified redirect URI."""

    error = "invalid_request_uri"
    redirectable = False
    default_description = "The request_uri is invalid, expired or was already used"


# RFC 8628 §3.5: the device access token response's errors.
class AuthorizationPending(OAuthError):
    """The authorization request is still pending as the end user hasn't yet completed the
    user-interaction steps."""

    error = "authorization_pending"
    default_description = "The customer has not yet approved this device"


class SlowDown(OAuthError):
    """A variant of authorization_pending: the client should keep polling, but the interval
    MUST be increased by 5 seconds for this and all subsequent requests."""

    error = "slow_down"
    default_description = "Polling too fast: wait 5 seconds more between requests"


class ExpiredToken(OAuthError):
    """The device_code has expired, and the device authorization session has concluded."""

    error = "expired_token"
    default_description = "The device code has expired; start again"


# RFC 6750 §3.1
class InvalidToken(OAuthError):
    error = "invalid_token"
    status_code = 401
    redirectable = False
    default_description = "The access token is invalid, expired or revoked"


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status_code = 403
    redirectable = False


class InvalidDpopBinding(InvalidToken):
    """RFC 9449 §7.1: the access token and the way it came do not go together: a DPoP-bound
    token sent as a bearer token, a bearer token sent with the DPoP scheme, or a proof signed
    by another key than the token's. Challenged with the DPoP scheme."""

    scheme = "DPoP"


# RFC 9449 §5, §7.1, §12.2. At the token endpoint 400; a protected resource answers them
# 401 with a DPoP challenge (`idp.web.responses`).
class InvalidDpopProof(OAuthError):
    """The DPoP proof is missing where one is required, or invalid (RFC 9449 §4.3)."""

    error = "invalid_dpop_proof"
    redirectable = False
    scheme = "DPoP"


class UseDpopNonce(OAuthError):
    """RFC 9449 §8, §9: the server requires a nonce it issued in the DPoP proof; the client
    retries with the one sent in the `DPoP-Nonce` header."""

    error = "use_dpop_nonce"
    redirectable = False
    scheme = "DPoP"

    def __init__(self, description: str, *, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce


# RFC 7591 §3.2.2: a registration request refused.
class InvalidRedirectUri(OAuthError):
    """The value of one or more redirection URIs is invalid."""

    error = "invalid_redirect_uri"
    redirectable = False


class InvalidClientMetadata(OAuthError):
    """The value of one of the client metadata fields is invalid, or the metadata breaks the
    server's registration policy."""

    error = "invalid_client_metadata"
    redirectable = False


class UnapprovedSoftwareStatement(OAuthError):
    """The software statement presented is not approved for use by this server."""

    error = "unapproved_software_statement"
    redirectable = False
    default_description = "Software statements are not accepted here"


# security.md ATO-02, PRIV-04; answered 429 with Retry-After (RFC 6585 §4) in `idp.web.errors`.
class Throttled(Exception):
    """Too many attempts: wait `retry_after` seconds."""

    def __init__(self, retry_after: int, what: str = "sign-in attempts") -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = max(1, retry_after)
        self.what = what  # "Too many {what}" on the 429 page
