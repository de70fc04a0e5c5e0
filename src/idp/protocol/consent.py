"""Consent rules as plain functions: what an app asks for, whether a grant covers it, and the
`consent` claim that carries the answer inside tokens.

A request covers scopes (data) and purposes (why). Each is required or optional for the app.
A grant covers a request when every required item is granted, every optional item was either
granted or declined, and every purpose was answered at its current version (a raised version
makes the earlier answer stale, so the customer is asked again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.locales import N_
from idp.protocol.privacy import NO_STANDING, Standing, effective_purposes

DATA_CATEGORIES = ("identity", "descriptive", "attitudinal", "behavioral")
LEGAL_BASES = ("consent", "contract", "legitimate_interest")
# Which category of personal data each standard scope releases.
SCOPE_CATEGORIES: dict[str, str] = {
    "openid": "identity",
    "email": "identity",
    "phone": "identity",
    "profile": "descriptive",
    "address": "descriptive",
    "offline_access": "behavioral",
}
# In the source language; shown in the customer's (idp.services.consent.texts).
CATEGORY_TITLES = {
    "identity": N_("Who you are"),
    "descriptive": N_("About you"),
    "attitudinal": N_("Your preferences and opinions"),
    "behavioral": N_("How you use the app"),
}


@dataclass(frozen=True)
class PurposeInfo:
    id: str
    title: str
    description: str
    data_categories: tuple[str, ...]
    legal_basis: str
    sale_or_share: bool
    version: int
    required: bool = False
    # The words as shown: their language (None: the default's) and the version of them.
    language: str | None = None
    text_version: int = 1


@dataclass(frozen=True)
class ConsentAsk:
    """What one authorization request asks the customer to agree to."""

    scopes: tuple[str, ...]
    optional_scopes: frozenset[str]
    claims: tuple[str, ...] = ()
    purposes: tuple[PurposeInfo, ...] = ()

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return tuple(s for s in self.scopes if s not in self.optional_scopes)


@dataclass(frozen=True)
class GrantView:
    scopes: frozenset[str]
    claims: frozenset[str]
    purposes: Mapping[str, int]  # purpose id -> version agreed
    declined_scopes: frozenset[str] = frozenset()
    declined_purposes: Mapping[str, int] = field(default_factory=dict)


def versions(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return {str(p["id"]): int(p["version"]) for p in items}


def covers(grant: GrantView | None, ask: ConsentAsk) -> bool:
    if grant is None:
        return False
    for scope in ask.scopes:
        if scope in grant.scopes:
            continue
        if scope in ask.optional_scopes and scope in grant.declined_scopes:
            continue
        return False
    if not set(ask.claims) <= grant.claims:
        return False
    for purpose in ask.purposes:
        if grant.purposes.get(purpose.id) == purpose.version:
            continue
        if not purpose.required and grant.declined_purposes.get(purpose.id) == purpose.version:
            continue
        return False
    return True


def default_choice(purpose: PurposeInfo, gpc: bool) -> bool:
    """Pre-selection on the consent page: a Global Privacy Control signal turns every
    sale-or-share purpose off by default (CCPA/CPRA, Cal. Code Regs. tit. 11 §7025)."""
    if purpose.required:
        return True
    return not (gpc and purpose.sale_or_share)


def consent_claim(grant_id: str, scopes: Iterable[str], purposes: Iterable[Mapping[str, Any]],
                  granted_at: int, updated_at: int, gpc: bool,
                  standing: Standing = NO_STANDING) -> dict[str, Any]:
    """The `consent` claim carried in ID tokens, access tokens, UserInfo and introspection,
    with the account's CCPA/CPRA choices (`privacy`); sale-or-share purposes are left out
    while the customer opted out of sale and sharing."""
    return {
        "grant_id": grant_id,
        "scopes": list(scopes),
        "purposes": [{"id": str(p["id"]), "version": int(p["version"])}
                     for p in effective_purposes(purposes, standing.withheld)],
        "granted_at": granted_at,
        "updated_at": updated_at,
        "gpc": gpc,
        "privacy": standing.privacy.claim(),
    }


def group_scopes_by_category(scopes: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for scope in scopes:
        grouped.setdefault(SCOPE_CATEGORIES.get(scope, "behavioral"), []).append(scope)
    return {c: grouped[c] for c in DATA_CATEGORIES if c in grouped}
