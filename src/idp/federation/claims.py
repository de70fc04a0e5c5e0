"""Upstream claims as plain values: boolean-like claims normalised, mapped claims selected.

Requirement 11: `email_verified` and `is_private_email` arrive as `true` or `"true"` (Apple
documents "a String or Boolean", federation.md §2.5; older Google tokens used strings too).
Anything other than true/"true" is false, so a malformed value never grants trust.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from idp.federation.config import ClaimMapping
from idp.federation.identity import MappedClaim


def normalise_bool(value: Any) -> bool:
    if value is True:
        return True
    return isinstance(value, str) and value.strip().lower() == "true"


def optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def map_claims(profile: Mapping[str, Any],
               mappings: tuple[ClaimMapping, ...]) -> dict[str, MappedClaim]:
    """The configured attributes present in this login's profile, each with its sync mode."""
    mapped: dict[str, MappedClaim] = {}
    for mapping in mappings:
        value = profile.get(mapping.claim)
        if value is not None and value != "":
            mapped[mapping.attribute] = MappedClaim(value, mapping.sync)
    return mapped
