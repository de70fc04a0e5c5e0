"""The authorization response at our callback, checked before any token request.

Requirement 6 (RFC 9207 §2.4, federation.md §5): a present `iss` must equal the upstream's
issuer by simple string comparison; an empty or repeated one is refused; a missing one is
refused when the upstream advertised the parameter (or the policy requires it). Requirement 7:
an upstream error is a result, `AuthorizationDenied`, not an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idp.crypto.handles import constant_time_equals
from idp.federation.config import IssParameterPolicy
from idp.federation.errors import CallbackRejected

# Upstream errors after which the brand app may simply try again (RFC 6749 §4.1.2.1 codes,
# and Apple's cancel, federation.md §8).
_RETRYABLE = frozenset({"access_denied", "user_cancelled_authorize", "temporarily_unavailable",
                        "interaction_required", "login_required", "consent_required"})
_SINGLE = ("code", "state", "iss", "error", "error_description", "error_reason", "user")
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class AuthorizationCode:
    code: str
    # Apple form_post: the `user` JSON, sent on the first authorization only (§2.3).
    user: str | None = None

    def __repr__(self) -> str:
        return "AuthorizationCode(code=<redacted>)"


@dataclass(frozen=True)
class AuthorizationDenied:
    error: str
    error_description: str | None = None
    error_reason: str | None = None  # Facebook: user_denied

    @property
    def retryable(self) -> bool:
        return self.error in _RETRYABLE

    @property
    def brand_error(self) -> str:
        """What our brand app is told (requirement 7): the user did not let us in."""
        return "access_denied"


CallbackResult = AuthorizationCode | AuthorizationDenied


def parse_callback(params: Iterable[tuple[str, str]], *, expected_state: str, issuer: str,
                   iss_policy: IssParameterPolicy, iss_advertised: bool) -> CallbackResult:
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    # RFC 6749 §3.1: parameters must not be included more than once.
    for name in _SINGLE:
        if len(values.get(name, [])) > 1:
            raise CallbackRejected(f"the callback repeats {name}")
    check_iss(values.get("iss", [None])[0], issuer, iss_policy, iss_advertised)
    state = values.get("state", [""])[0]
    if not state or not constant_time_equals(state, expected_state):
        raise CallbackRejected("the callback's state is not this transaction's")
    if "error" in values:
        return AuthorizationDenied(
            error=_clean(values["error"][0]) or "access_denied",
            error_description=_clean(values.get("error_description", [None])[0]),
            error_reason=_clean(values.get("error_reason", [None])[0]),
        )
    code = values.get("code", [""])[0]
    if not code:
        raise CallbackRejected("the callback has neither code nor error")
    return AuthorizationCode(code=code, user=values.get("user", [None])[0])


def check_iss(iss: str | None, issuer: str, policy: IssParameterPolicy,
              advertised: bool) -> None:
    if iss is None:
        if advertised or policy is IssParameterPolicy.required:
            raise CallbackRejected("the callback lacks iss although the upstream sends it")
        return
    # RFC 9207 §2.4: simple string comparison, no normalisation; an empty value never matches.
    if not iss or iss != issuer:
        raise CallbackRejected("the callback's iss is not the upstream's issuer")


def _clean(value: str | None) -> str | None:
    """Upstream text is shown and logged at most as printable ASCII of bounded length."""
    if value is None:
        return None
    return "".join(c for c in value[:MAX_DESCRIPTION] if 0x20 <= ord(c) < 0x7F)
