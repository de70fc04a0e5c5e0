"""Why an upstream login or notification was refused.

Messages are fixed phrases written here or by the check that raises: never a token, code,
secret or upstream body (requirement 13), so they may be logged as they are.
"""

from __future__ import annotations


class FederationError(Exception):
    """An upstream interaction failed; the login must not go on."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CallbackRejected(FederationError):
    """The authorization response is malformed or not ours (state, RFC 9207 `iss`, alias)."""


class InvalidIdToken(FederationError):
    """An ID token failed a check of OIDC Core §3.1.3.7 (requirement 8)."""


class UpstreamUnavailable(FederationError):
    """The upstream could not be reached or answered with something unusable."""


class TokenRequestFailed(FederationError):
    """The upstream token endpoint refused the request with an RFC 6749 §5.2 error."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(f"token endpoint answered {error}")


class InvalidUpstreamToken(FederationError):
    """An upstream access token is not one we may use (Facebook `debug_token`, requirement 12)."""


class InvalidSignedRequest(FederationError):
    """A Facebook `signed_request` failed verification (requirements 29, 30)."""


class InvalidNotification(FederationError):
    """An upstream notification (Apple server-to-server) failed verification (requirement 27)."""
