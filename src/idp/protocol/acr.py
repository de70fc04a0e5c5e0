"""Authentication context: which `acr` a session meets, what a request asks for, and whether it
calls for a second factor (step-up).

OIDC Core §2: `acr` names the authentication context class the authentication satisfied, `amr`
(RFC 8176 §2) the methods used. §3.1.2.1: `acr_values` are voluntary, "in order of
preference". §5.5.1.1: an essential `acr` claim "MUST" be met by one of its values, or the
outcome is a failed authentication; the OP "MAY ask the End-User to re-authenticate with
additional factors to meet this requirement" (step-up).

The three values we define (advertised in discovery):
- `urn:idp:acr:password`: our password (amr has "pwd");
- `urn:idp:acr:federated`: an upstream provider's sign-in (amr has "fed"), as strong as it;
- `urn:idp:acr:mfa`: a second factor of ours on top of either (amr has "mfa").
A session meets every value its methods prove: a password and a code meet both
`password` and `mfa`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from idp import errors
from idp.protocol.discovery import ACR_FEDERATED, ACR_MFA, ACR_PASSWORD

SUPPORTED_ACR_VALUES = (ACR_PASSWORD, ACR_FEDERATED, ACR_MFA)
# The amr method each value stands for.
_METHOD = {ACR_PASSWORD: "pwd", ACR_FEDERATED: "fed", ACR_MFA: "mfa"}
MAX_ACR_VALUES = 20


class StepUp(Enum):
    """What the request asks of a session without a second factor."""

    NONE = "none"
    PREFERRED = "preferred"  # acr_values prefers the MFA value: step up when the account can
    ESSENTIAL = "essential"  # an essential acr only the MFA value meets (OIDC Core §5.5.1.1)
    CLIENT = "client"  # the client requires a second factor for every sign-in


def session_acr(amr: Iterable[str]) -> str:
    """The strongest value a session with these methods meets. A sign-in through an upstream
    only (amr ["fed"]) does not claim our password's context."""
    methods = set(amr)
    if "mfa" in methods:
        return ACR_MFA
    return ACR_FEDERATED if "fed" in methods and "pwd" not in methods else ACR_PASSWORD


def satisfies(value: str, amr: Iterable[str]) -> bool:
    method = _METHOD.get(value)
    return method is not None and method in set(amr)


def essential_values(claims: dict[str, Any] | None) -> tuple[str, ...] | None:
    """The values of an essential `acr` claim for the ID token (OIDC Core §5.5.1.1), in the
    order given; None when `acr` is not essential. `check_acr_claim` has vetted the shape."""
    spec = ((claims or {}).get("id_token") or {}).get("acr")
    if not isinstance(spec, dict) or spec.get("essential") is not True:
        return None
    if "values" in spec:
        return tuple(spec["values"])
    return (spec["value"],) if "value" in spec else None


def check_acr_claim(claims: dict[str, Any] | None) -> None:
    """OIDC Core §5.5.1: `essential` is a boolean, `value` a string, `values` an array of
    strings. Anything else is a malformed request (invalid_request), not a silent default."""
    for member in ("id_token", "userinfo"):
        spec = ((claims or {}).get(member) or {}).get("acr")
        if spec is None:
            continue
        where = f"claims.{member}.acr"
        if "essential" in spec and not isinstance(spec["essential"], bool):
            raise errors.InvalidRequest(f"{where}.essential must be true or false")
        if "value" in spec and not isinstance(spec["value"], str):
            raise errors.InvalidRequest(f"{where}.value must be a string")
        if "values" in spec:
            values = spec["values"]
            if not isinstance(values, list) or not values or len(values) > MAX_ACR_VALUES or \
                    not all(isinstance(v, str) for v in values):
                raise errors.InvalidRequest(f"{where}.values must be an array of strings")
        if "value" in spec and "values" in spec:
            raise errors.InvalidRequest(f"{where} has both value and values")


def check_essential_supported(claims: dict[str, Any] | None) -> None:
    """An essential `acr` none of whose values we define can never be met: refused before
    the customer is asked to sign in for nothing (OIDC Core §5.5.1.1: a failed
    authentication, RFC 6749 §4.1.2.1 access_denied)."""
    values = essential_values(claims)
    if values is not None and not set(values) & set(SUPPORTED_ACR_VALUES):
        raise errors.AccessDenied("The requested authentication context cannot be met")


def step_up(acr_values: tuple[str, ...], claims: dict[str, Any] | None, require_mfa: bool,
            amr: Iterable[str]) -> StepUp:
    """Whether a session with `amr` must (or should) add a second factor for this request."""
    methods = tuple(amr)
    if "mfa" in methods:
        return StepUp.NONE
    if require_mfa:
        return StepUp.CLIENT
    essential = essential_values(claims)
    if essential is not None:
        met = any(satisfies(v, methods) for v in essential)
        return StepUp.ESSENTIAL if not met and ACR_MFA in essential else StepUp.NONE
    # §3.1.2.1 order of preference: the MFA value before any value the session already meets.
    for value in acr_values:
        if satisfies(value, methods):
            return StepUp.NONE
        if value == ACR_MFA:
            return StepUp.PREFERRED
    return StepUp.NONE


def chosen_acr(acr_values: tuple[str, ...], claims: dict[str, Any] | None,
               require_mfa: bool, amr: Iterable[str]) -> str:
    """The `acr` the tokens carry: the first requested value the session meets (an essential
    claim's values, else `acr_values`), else the strongest it meets. AccessDenied when an
    essential `acr` (or the client's requirement) is not met."""
    methods = tuple(amr)
    if require_mfa and "mfa" not in methods:
        raise errors.AccessDenied("This app requires two-step sign-in")
    essential = essential_values(claims)
    for value in essential or acr_values:
        if satisfies(value, methods):
            return value
    if essential is not None:
        raise errors.AccessDenied("The requested authentication context cannot be met")
    return session_acr(methods)
