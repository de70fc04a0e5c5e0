"""What a completed upstream login yields, and how mapped claims land in a profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from idp.federation.config import SyncMode


@dataclass(frozen=True)
class MappedClaim:
    value: Any
    sync: SyncMode


@dataclass(frozen=True)
class UpstreamIdentity:
    """One upstream login. Keyed by (namespace, subject), never by email (requirement 14)."""

    alias: str
    namespace: str
    subject: str
    email: str | None
    email_verified: bool
    # Verified *and* the upstream owns the address's domain (requirements 20, 21).
    email_authoritative: bool
    claims: Mapping[str, MappedClaim]
    raw: Mapping[str, Any] = field(repr=False)
    granted_scopes: frozenset[str] = frozenset()
    # Needed to revoke at the upstream when the account is deleted (requirement 31): Apple
    # always issues one; Google only with access_type=offline.
    refresh_token: str | None = field(default=None, repr=False)
    # Google without a refresh token: its access token, kept for `/revoke` instead.
    access_token: str | None = field(default=None, repr=False)
    transfer_sub: str | None = None  # Apple, requirement 18
    # Attributes whose value is a URL that stops working (Facebook pictures, requirement 37).
    expiring_claims: frozenset[str] = frozenset()


def apply_sync(current: Mapping[str, Any], incoming: Mapping[str, MappedClaim], *,
               first_login: bool) -> dict[str, Any]:
    """The profile after this login (requirement 35): `import_once` attributes are written only
    at the first login; `update_every_login` ones each time. A claim absent from this login
    leaves the stored value alone (requirement 36: a later Apple login never clears the name)."""
    updated = dict(current)
    for attribute, claim in incoming.items():
        if first_login or claim.sync is SyncMode.update_every_login:
            updated[attribute] = claim.value
    return updated
