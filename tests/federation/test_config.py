"""Upstream registrations (federation.md §9 requirement 1) and their guard rails."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from idp.federation.config import LinkingPolicy, UpstreamConfig

pytestmark = pytest.mark.no_database

BASE: dict[str, Any] = {"alias": "google", "type": "google", "client_id": "c",
                        "client_secret": "s"}


def make(**overrides: Any) -> UpstreamConfig:
    return UpstreamConfig.model_validate({**BASE, **overrides})


def test_presets_fill_the_public_values_and_every_url_is_overridable() -> None:
    """Req 1: alias, type, allowed issuers, discovery or endpoints, JWKS URL, credentials,
    scopes, linking policy, email authority, claim mappings with sync modes."""
    google = make()
    assert google.discovery_url == "https://accounts.google.com/.well-known/openid-configuration"
    assert google.allowed_issuers == {"https://accounts.google.com", "accounts.google.com"}
    assert google.linking_policy is LinkingPolicy.prompt
    assert {m.attribute for m in google.claim_mappings} >= {"name", "picture"}
    moved = make(discovery_url="https://google.fake/d", jwks_uri="https://google.fake/k",
                 token_endpoint="https://google.fake/t")
    assert (moved.discovery_url, moved.jwks_uri) == ("https://google.fake/d",
                                                     "https://google.fake/k")
    facebook = UpstreamConfig.model_validate(
        {**BASE, "alias": "fb", "type": "facebook", "graph_api_version": "v23.0"})
    assert facebook.token_endpoint == "https://graph.facebook.com/v23.0/oauth/access_token"
    assert facebook.namespace == "facebook:c"
    fb_moved = UpstreamConfig.model_validate(
        {**BASE, "alias": "fb", "type": "facebook", "graph_api_url": "https://fb.fake/v1.0"})
    assert fb_moved.graph_api_url == "https://fb.fake/v1.0"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"leeway_seconds": 121}, "less than or equal to 120"),
    ({"id_token_signing_algs": ("RS256", "HS256")}, "limited to"),
    ({"id_token_signing_algs": ("none",)}, "limited to"),
    ({"discovery_url": "http://accounts.example/.well-known"}, "https"),
    ({"token_endpoint": "ftp://x"}, "https"),
    ({"client_secret": None}, "client_secret"),
    ({"alias": "Google Login"}, "pattern"),
    ({"transaction_ttl": 601}, "less than or equal to 600"),
    ({"type": "oidc", "issuer": "https://op.example", "discovery_url": None}, "discovery_url"),
    ({"type": "apple", "alias": "apple"}, "apple_team_id"),
    ({"unknown_field": 1}, "Extra inputs"),
])
def test_unsafe_or_incomplete_configurations_are_refused(overrides: dict[str, Any],
                                                         message: str) -> None:
    """Req 1, 8: leeway at most 120 s; RS256/ES256 only; https URLs; credentials present."""
    with pytest.raises(ValidationError, match=message):
        make(**overrides)


def test_loopback_http_is_allowed_for_local_fakes() -> None:
    """Req 1: fakes served on this machine may use plain http."""
    assert make(discovery_url="http://127.0.0.1:9000/.well-known/openid-configuration")


def test_config_is_frozen_and_hides_secrets() -> None:
    """Req 1, 13: a registration cannot change under a running client, and its repr (so any
    log line) never shows the client secret."""
    config = make(client_secret="GOCSPX-very-secret")
    with pytest.raises(ValidationError):
        config.alias = "other"  # type: ignore[misc]
    assert "GOCSPX-very-secret" not in repr(config)
