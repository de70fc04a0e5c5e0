"""Fakes and clients for the upstream client tests: one injected clock, no network."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from joserfc.jwk import ECKey

from idp.federation.apple import AppleUpstream
from idp.federation.config import UpstreamConfig
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.http import new_upstream_client
from tests.fakes.apple import FakeApple
from tests.fakes.common import Clock, transport
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle

GOOGLE_CLIENT_ID = "brand-web.apps.googleusercontent.com"
GOOGLE_SECRET = "GOCSPX-google-client-secret-value"
GOOGLE_REDIRECT = "https://idp.test/federation/google/callback"
APPLE_TEAM = "TEAM123456"
APPLE_KEY_ID = "KEYID12345"
APPLE_SERVICES_ID = "com.brand.signin"
APPLE_BUNDLE_ID = "com.brand.app"
APPLE_REDIRECT = "https://idp.test/federation/apple/callback"
APPLE_KEY = ECKey.generate_key("P-256", private=True)
FB_APP_ID = "1234567890123456"
FB_OTHER_APP_ID = "6543210987654321"
FB_SECRET = "fb-app-secret-0123456789abcdef"
FB_REDIRECT = "https://idp.test/federation/facebook/callback"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def google(clock: Clock) -> FakeGoogle:
    fake = FakeGoogle(clock=clock)
    fake.register(GOOGLE_CLIENT_ID, GOOGLE_SECRET, [GOOGLE_REDIRECT])
    return fake


@pytest.fixture
def apple(clock: Clock) -> FakeApple:
    fake = FakeApple(clock=clock)
    public = ECKey.import_key(APPLE_KEY.as_dict(private=False))
    for client_id in (APPLE_SERVICES_ID, APPLE_BUNDLE_ID):
        fake.register(client_id, APPLE_TEAM, APPLE_KEY_ID, public, [APPLE_REDIRECT])
    return fake


@pytest.fixture
def facebook(clock: Clock) -> FakeFacebook:
    fake = FakeFacebook(clock=clock)
    fake.register(FB_APP_ID, FB_SECRET, [FB_REDIRECT])
    fake.register(FB_OTHER_APP_ID, "another-apps-secret", ["https://other.example/cb"])
    return fake


@pytest.fixture
async def http(google: FakeGoogle, apple: FakeApple,
               facebook: FakeFacebook) -> AsyncIterator[httpx.AsyncClient]:
    async with new_upstream_client(transport(google, apple, facebook)) as client:
        yield client


def google_config(fake: FakeGoogle, **overrides: object) -> UpstreamConfig:
    values: dict[str, object] = {
        "alias": "google", "type": "google", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET, "discovery_url": fake.discovery_url,
    }
    values.update(overrides)
    return UpstreamConfig.model_validate(values)


@pytest.fixture
def upstream(google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> GoogleUpstream:
    return GoogleUpstream(google_config(google), http, clock)


def apple_config(fake: FakeApple, **overrides: object) -> UpstreamConfig:
    values: dict[str, object] = {
        "alias": "apple", "type": "apple", "client_id": APPLE_SERVICES_ID,
        "additional_audiences": [APPLE_BUNDLE_ID], "apple_team_id": APPLE_TEAM,
        "apple_key_id": APPLE_KEY_ID, "discovery_url": fake.discovery_url,
        "apple_private_key": APPLE_KEY.as_pem(private=True).decode(),
    }
    values.update(overrides)
    return UpstreamConfig.model_validate(values)


@pytest.fixture
def apple_upstream(apple: FakeApple, http: httpx.AsyncClient, clock: Clock) -> AppleUpstream:
    return AppleUpstream(apple_config(apple), http, clock)


def facebook_config(fake: FakeFacebook, **overrides: object) -> UpstreamConfig:
    values: dict[str, object] = {
        "alias": "facebook", "type": "facebook", "client_id": FB_APP_ID,
        "client_secret": FB_SECRET,
        "authorization_endpoint": fake.url("/v21.0/dialog/oauth"),
        "token_endpoint": fake.url("/v21.0/oauth/access_token"),
        "graph_api_url": fake.url("/v21.0"),
        "jwks_uri": fake.url("/.well-known/oauth/openid/jwks/"),
    }
    values.update(overrides)
    return UpstreamConfig.model_validate(values)


@pytest.fixture
def facebook_upstream(facebook: FakeFacebook, http: httpx.AsyncClient,
                      clock: Clock) -> FacebookUpstream:
    return FacebookUpstream(facebook_config(facebook), http, clock)
