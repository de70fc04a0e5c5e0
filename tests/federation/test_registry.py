"""All three upstreams and a generic one, configured against the fakes, each completing a
login through the one factory the wiring step will use (federation.md §9 requirement 1)."""

from __future__ import annotations

import httpx
import pytest

from idp.federation.apple import AppleUpstream
from idp.federation.errors import TokenRequestFailed
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.identity import UpstreamIdentity
from idp.federation.oidc import GenericOidcUpstream
from idp.federation.registry import create_upstream
from tests.fakes.apple import FakeApple
from tests.fakes.common import Clock, user_agent
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import ACCESS_TOKEN_TTL, FakeGoogle
from tests.federation.conftest import (
    APPLE_REDIRECT,
    FB_REDIRECT,
    GOOGLE_REDIRECT,
    apple_config,
    facebook_config,
    google_config,
)

pytestmark = pytest.mark.no_database


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
    """Req 31 (client part): Google `/revoke` with `token=`; the whole grant ends at Google,
    its access token with it."""
    access_token, refresh_token = google.grant(offline=True)
    await upstream.revoke(refresh_token)
    call = google.log.calls("/revoke")[0]
    assert call.form == {"token": refresh_token}
    assert "authorization" not in call.headers
    assert google.revoked == {refresh_token}
    assert not google.grant_live(access_token)


@pytest.mark.parametrize("token", ["expired", "revoked", "unknown"])
async def test_google_refuses_to_revoke_a_dead_token(
        upstream: GoogleUpstream, google: FakeGoogle, clock: Clock, token: str) -> None:
    """Google's /revoke answers 400 `invalid_token` ("Token expired or revoked") for an
    expired access token, a token revoked before, and one it never issued; our client reports
    that error by name. An expired access token leaves its grant in place at Google."""
    access_token, _ = google.grant(offline=False)
    presented = {"expired": access_token, "revoked": access_token,
                 "unknown": "ya29.never-issued"}[token]
    if token == "expired":
        clock.advance(ACCESS_TOKEN_TTL)
    if token == "revoked":
        await upstream.revoke(access_token)
    with pytest.raises(TokenRequestFailed) as refused:
        await upstream.revoke(presented)
    assert refused.value.error == "invalid_token"
    answer = google.log.calls("/revoke")[-1]
    assert answer.form == {"token": presented}
    assert google.grant_live(access_token) is (token != "revoked")
    assert google.revoked == ({access_token} if token == "revoked" else set())
