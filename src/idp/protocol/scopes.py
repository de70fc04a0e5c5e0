"""Scopes, the claims they release (OIDC Core §5.4), and how the consent page words them."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SCOPE_LENGTH = 1024
MAX_SCOPE_VALUES = 32


@dataclass(frozen=True)
class ScopeInfo:
    name: str
    claims: tuple[str, ...]
    description: str


SCOPES: dict[str, ScopeInfo] = {
    s.name: s
    for s in (
        ScopeInfo("openid", ("sub",), "Sign you in with your account, using an identifier that "
                  "does not reveal your e-mail address"),
        ScopeInfo(
            "profile",
            ("name", "family_name", "given_name", "middle_name", "nickname",
             "preferred_username", "profile", "picture", "website", "gender", "birthdate",
             "zoneinfo", "locale", "updated_at"),
            "Your name and basic profile: nickname, picture, birth date, gender, language "
            "and time zone",
        ),
        ScopeInfo("email", ("email", "email_verified"),
                  "Your e-mail address and whether it has been verified"),
        ScopeInfo("address", ("address",), "Your postal address"),
        ScopeInfo("phone", ("phone_number", "phone_number_verified"),
                  "Your phone number and whether it has been verified"),
        ScopeInfo("offline_access", (),
                  "Stay connected to your account when you are not using the app"),
    )
}
# Scopes about an end-user: meaningless in a token a client obtains for itself.
USER_SCOPES = frozenset(SCOPES)
# Operators may define API scopes of their own (for example `orders:read`).
_API_SCOPE = re.compile(r"^[a-z][a-z0-9_.:/-]{0,63}$")
SUPPORTED_SCOPES = tuple(SCOPES)
SUPPORTED_CLAIMS = tuple(dict.fromkeys(c for s in SCOPES.values() for c in s.claims))
PROFILE_CLAIMS = frozenset(SUPPORTED_CLAIMS) - {"sub", "email", "email_verified"}


def parse_scope(raw: str | None) -> list[str]:
    """Split a scope parameter (RFC 6749 §3.3) keeping first-seen order, without duplicates."""
    if not raw:
        return []
    return [s for s in dict.fromkeys(raw.split(" ")) if s]


def claims_for_scopes(scopes: list[str]) -> set[str]:
    return {claim for s in scopes if s in SCOPES for claim in SCOPES[s].claims}


def is_api_scope(name: str) -> bool:
    return name not in SCOPES and bool(_API_SCOPE.match(name))


def describe_scopes(scopes: list[str]) -> list[ScopeInfo]:
    return [SCOPES.get(s) or ScopeInfo(s, (), f"Use the app's “{s}” permission") for s in scopes]
