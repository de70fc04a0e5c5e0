"""Pure rules over upstream claims: boolean normalisation, email authority, profile sync."""

from __future__ import annotations

from typing import Any

import pytest

from idp.federation.authority import email_is_authoritative, may_auto_link
from idp.federation.claims import map_claims, normalise_bool
from idp.federation.config import ClaimMapping, LinkingPolicy, SyncMode, UpstreamConfig
from idp.federation.identity import MappedClaim, apply_sync

pytestmark = pytest.mark.no_database

APPLE_KEY = "-----BEGIN PRIVATE KEY-----\nnot parsed by the config\n-----END PRIVATE KEY-----"


def config(kind: str) -> UpstreamConfig:
    extra: dict[str, Any] = {"client_secret": "s"}
    if kind == "apple":
        extra = {"apple_team_id": "TEAM123456", "apple_key_id": "KEY1234567",
                 "apple_private_key": APPLE_KEY}
    return UpstreamConfig.model_validate({"alias": kind, "type": kind, "client_id": "c",
                                          **extra})


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("true", True), ("TRUE", True), (" true ", True),
    (False, False), ("false", False), (None, False), (1, False), ("1", False),
    ("yes", False), ({}, False), ("", False),
])
def test_boolean_like_claims_are_normalised(value: Any, expected: bool) -> None:
    """Req 11: true/"true" are true; false/"false" and any other value are false."""
    assert normalise_bool(value) is expected


# Requirement 20 matrix: (row, upstream, email, email_verified, hd, authoritative)
AUTHORITY = [
    ("Gmail", "google", "alice@gmail.com", True, None, True),
    ("Googlemail", "google", "alice@GoogleMail.com", True, None, True),
    ("Gmail unverified", "google", "alice@gmail.com", False, None, False),
    ("Workspace with hd", "google", "bob@startup.example", True, "startup.example", True),
    ("Workspace hd of another domain", "google", "bob@startup.example", True, "other.example",
     False),
    ("Google non-Gmail consumer", "google", "carol@example.org", True, None, False),
    ("Apple relay", "apple", "x1y2@privaterelay.appleid.com", True, None, True),
    ("Apple new relay domain", "apple", "x1y2@private.icloud.com", True, None, True),
    ("Apple iCloud", "apple", "dan@icloud.com", True, None, True),
    ("Apple sharing a gmail address", "apple", "erin@gmail.com", True, None, False),
    ("Apple with hd claim ignored", "apple", "erin@corp.example", True, "corp.example", False),
    ("Facebook", "facebook", "frank@gmail.com", True, None, False),
    ("generic OIDC", "oidc", "gina@gmail.com", True, None, False),
    ("no email", "google", None, True, None, False),
    ("malformed email", "google", "gmail.com", True, None, False),
]


@pytest.mark.parametrize(("row", "kind", "email", "verified", "hd", "expected"), AUTHORITY,
                         ids=[a[0] for a in AUTHORITY])
def test_email_authority_matrix(row: str, kind: str, email: str | None, verified: bool,
                                hd: str | None, expected: bool) -> None:
    """Requirements 20, 21 (and 22 for Facebook): only the authoritative rows count, with the
    default rules per upstream type."""
    rules = config(kind).email_authority if kind != "oidc" else UpstreamConfig.model_validate(
        {"alias": "o", "type": "oidc", "issuer": "https://op.example", "client_id": "c",
         "client_secret": "s", "discovery_url": "https://op.example/.well-known/x"}
    ).email_authority
    assert email_is_authoritative(email, verified, rules, hd=hd) is expected


@pytest.mark.parametrize(("policy", "authoritative", "local_verified", "expected"), [
    (LinkingPolicy.auto_if_authoritative, True, True, True),
    (LinkingPolicy.auto_if_authoritative, True, False, False),
    (LinkingPolicy.auto_if_authoritative, False, True, False),
    (LinkingPolicy.prompt, True, True, False),
    (LinkingPolicy.deny, True, True, False),
])
def test_auto_link_needs_all_three_conditions(policy: LinkingPolicy, authoritative: bool,
                                              local_verified: bool, expected: bool) -> None:
    """Requirements 19, 20: auto-linking only under auto_if_authoritative with an authoritative
    upstream and a verified local email; prompt is the default."""
    assert may_auto_link(policy, email_authoritative=authoritative,
                         local_email_verified=local_verified) is expected
    assert config("google").linking_policy is LinkingPolicy.prompt


def test_authority_rules_are_configurable() -> None:
    """Req 21: the defaults can be replaced per upstream."""
    custom = UpstreamConfig.model_validate({
        "alias": "corp", "type": "oidc", "issuer": "https://op.example", "client_id": "c",
        "client_secret": "s", "discovery_url": "https://op.example/.well-known/x",
        "email_authority": {"domains": ["corp.example"]}})
    assert email_is_authoritative("a@corp.example", True, custom.email_authority)
    assert not email_is_authoritative("a@gmail.com", True, custom.email_authority)


def test_claim_mapping_and_sync_modes() -> None:
    """Req 35: import_once is written at the first login only, update_every_login each time;
    a claim missing from a later login leaves the stored value (req 36)."""
    mappings = (ClaimMapping(claim="name", attribute="name", sync=SyncMode.import_once),
                ClaimMapping(claim="picture", attribute="avatar",
                             sync=SyncMode.update_every_login))
    first = map_claims({"name": "Ann", "picture": "https://p/1", "email": "x"}, mappings)
    assert first == {"name": MappedClaim("Ann", SyncMode.import_once),
                     "avatar": MappedClaim("https://p/1", SyncMode.update_every_login)}
    profile = apply_sync({}, first, first_login=True)
    assert profile == {"name": "Ann", "avatar": "https://p/1"}
    later = map_claims({"name": "Changed", "picture": "https://p/2"}, mappings)
    assert apply_sync(profile, later, first_login=False) == {"name": "Ann",
                                                             "avatar": "https://p/2"}
    assert apply_sync(profile, map_claims({}, mappings), first_login=False) == profile
