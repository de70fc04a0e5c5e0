"""All three upstreams and a generic one, configured against the fakes, each completing a
login through the one factory the wiring step will use (federation.md §9 requirement 1)."""

from __future__ import annotations

import httpx

from idp.federation.apple import AppleUpstream
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.identity import UpstreamIdentity
from idp.federation.oidc import GenericOidcUpstream
from idp.federation.registry import create_upstream
from tests.fakes.apple import FakeApple
from tests.fakes.common import Clock, user_agent
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import (
    APPLE_REDIRECT,
    FB_REDIRECT,
    GOOGLE_REDIRECT,
    apple_config,
    facebook_config,
    google_config,
)


async def test_each_upstream_type_logs_in_against_its_fake(
        google: FakeGoogle, apple: FakeApple, facebook: FakeFacebook,
        http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 1, 14: one registration per upstream, every URL pointed at a fake; each login gives
    an identity in its own namespace."""
    cases = [
        (google_config(google), GOOGLE_REDIRECT, GoogleUpstream, "https://accounts.google.com"),
        (google_config(google, alias="corp", type="oidc", issuer="https://accounts.google.com",
                       email_authority=None), GOOGLE_REDIRECT, GenericOidcUpstream,
         "https://accounts.google.com"),
        (apple_config(apple), APPLE_REDIRECT, AppleUpstream, "apple:TEAM123456"),
        (facebook_config(facebook), FB_REDIRECT, FacebookUpstream, "facebook:1234567890123456"),
    ]
    for config, redirect_uri, cls, namespace in cases:
        upstream = create_upstream(config, http, clock)
        assert type(upstream) is cls
        start = await upstream.start(redirect_uri)
        identity = await upstream.handle_callback(await user_agent(http, start.url),
                                                  start.transaction)
        assert isinstance(identity, UpstreamIdentity) and identity.namespace == namespace
        assert identity.alias == config.alias


async def test_google_revoke_posts_the_token(
        upstream: GoogleUpstream, google: FakeGoogle) -> None:
    """Req 31 (client part): Google `/revoke` with `token=`."""
    await upstream.revoke("1//refresh-token-to-revoke")
    call = google.log.calls("/revoke")[0]
    assert call.form == {"token": "1//refresh-token-to-revoke"}
    assert "authorization" not in call.headers
    assert google.revoked == {"1//refresh-token-to-revoke"}
