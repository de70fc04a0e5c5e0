"""Scopes, the claims they release (OIDC Core §5.4), and how the consent page words them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from idp.locales import N_

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
        ScopeInfo("openid", ("sub",), N_("Sign you in with your account, using an identifier "
                                         "that does not reveal your e-mail address")),
        ScopeInfo(
            "profile",
            ("name", "family_name", "given_name", "middle_name", "nickname",
             "preferred_username", "profile", "picture", "website", "gender", "birthdate",
             "zoneinfo", "locale", "updated_at"),
            N_("Your name and basic profile: nickname, picture, birth date, gender, language "
               "and time zone"),
        ),
        ScopeInfo("email", ("email", "email_verified"),
                  N_("Your e-mail address and whether it has been verified")),
        ScopeInfo("address", ("address",), N_("Your postal address")),
        ScopeInfo("phone", ("phone_number", "phone_number_verified"),
                  N_("Your phone number and whether it has been verified")),
        ScopeInfo("offline_access", (),
                  N_("Stay connected to your account when you are not using the app")),
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


# An operator's own scope (orders:read), in the source language.
API_SCOPE_DESCRIPTION = N_("Use the app's “%(scope)s” permission")
# Claims in plain words, for claims asked for one by one and profile attributes offered.
CLAIM_TITLES = {
    "name": N_("name"), "given_name": N_("given name"), "family_name": N_("family name"),
    "middle_name": N_("middle name"), "nickname": N_("nickname"),
    "preferred_username": N_("preferred username"), "profile": N_("profile page"),
    "picture": N_("picture"), "website": N_("website"), "gender": N_("gender"),
    "birthdate": N_("birthdate"), "zoneinfo": N_("time zone"), "locale": N_("language"),
    "updated_at": N_("profile's last change"), "email": N_("email"),
    "email_verified": N_("email's verification"), "address": N_("postal address"),
    "phone_number": N_("phone number"), "phone_number_verified": N_("phone number's verification"),
}


def describe_scopes(scopes: list[str]) -> list[ScopeInfo]:
    return [SCOPES.get(s) or ScopeInfo(s, (), API_SCOPE_DESCRIPTION % {"scope": s})
            for s in scopes]
