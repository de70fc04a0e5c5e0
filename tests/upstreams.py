"""Google, Apple and Facebook as our upstreams, configured against the fakes of tests/fakes,
and browsers that reach us and those fakes: a pytest plugin (tests/conftest.py names it in
`pytest_plugins`), so that every sign-in suite asks for the same fixtures by name.

tests/federation/conftest.py defines `google`, `apple` and `facebook` too, as bare fakes for
the client-level tests; a conftest's fixtures win over a plugin's in its directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from joserfc.jwk import ECKey

from idp.federation.config import UpstreamConfig
from idp.net.tls import https_context
from idp.services.context import Context
from idp.services.upstream.providers import save_upstream
from tests.conftest import ISSUER, FakeClock
from tests.fakes.apple import FakeApple
from tests.fakes.common import FakeServer, transport
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle

GOOGLE_CLIENT_ID = "brand.apps.googleusercontent.com"
GOOGLE_SECRET = "GOCSPX-brand-secret"
GOOGLE_CALLBACK = f"{ISSUER}/federation/google/callback"
RISC = "/federation/google/risc"
SECEVENT = {"Content-Type": "application/secevent+jwt"}

APPLE_SERVICES_ID = "com.brand.signin"
APPLE_TEAM = "TEAM123456"
APPLE_KEY_ID = "KEYID12345"
APPLE_KEY = ECKey.generate_key("P-256", private=True)
APPLE_CALLBACK = f"{ISSUER}/federation/apple/callback"
NOTIFICATIONS = "/federation/apple/notifications"

FACEBOOK_APP_ID = "1234567890123456"
FACEBOOK_SECRET = "fb-app-secret-0123456789abcdef"
FACEBOOK_CALLBACK = f"{ISSUER}/federation/facebook/callback"

UPSTREAMS = ("google", "apple", "facebook")
Browsers = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def google(ctx: Context, clock: FakeClock) -> FakeGoogle:
    """Google as our upstream `google`, its fake answering our back channel."""
    fake = FakeGoogle(clock=clock)  # type: ignore[arg-type]
    fake.register(GOOGLE_CLIENT_ID, GOOGLE_SECRET, [GOOGLE_CALLBACK])
    ctx.upstream_transport = transport(fake)
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "google", "type": "google", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_SECRET, "discovery_url": fake.discovery_url}))
    return fake


@pytest.fixture
async def apple(ctx: Context, clock: FakeClock) -> FakeApple:
    """Apple as our upstream `apple`, its fake answering our back channel."""
    fake = FakeApple(clock=clock)  # type: ignore[arg-type]
    fake.register(APPLE_SERVICES_ID, APPLE_TEAM, APPLE_KEY_ID,
                  ECKey.import_key(APPLE_KEY.as_dict(private=False)), [APPLE_CALLBACK])
    ctx.upstream_transport = transport(fake)
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "apple", "type": "apple", "client_id": APPLE_SERVICES_ID,
        "apple_team_id": APPLE_TEAM, "apple_key_id": APPLE_KEY_ID,
        "apple_private_key": APPLE_KEY.as_pem(private=True).decode(),
        "discovery_url": fake.discovery_url}))
    return fake


@pytest.fixture
async def facebook(ctx: Context, clock: FakeClock) -> FakeFacebook:
    """Facebook as our upstream `facebook`, its fake answering our back channel."""
    fake = FakeFacebook(clock=clock)  # type: ignore[arg-type]
    fake.register(FACEBOOK_APP_ID, FACEBOOK_SECRET, [FACEBOOK_CALLBACK])
    ctx.upstream_transport = transport(fake)
    await save_upstream(ctx, UpstreamConfig.model_validate({
        "alias": "facebook", "type": "facebook", "client_id": FACEBOOK_APP_ID,
        "client_secret": FACEBOOK_SECRET,
        "authorization_endpoint": fake.url("/v21.0/dialog/oauth"),
        "token_endpoint": fake.url("/v21.0/oauth/access_token"),
        "graph_api_url": fake.url("/v21.0"),
        "jwks_uri": fake.url("/.well-known/oauth/openid/jwks/")}))
    return fake


@pytest.fixture
async def browsers(app) -> AsyncIterator[Browsers]:  # type: ignore[no-untyped-def]
    """A factory of independent browsers (cookie jars) that reach us and the given fakes."""
    opened: list[httpx.AsyncClient] = []

    def factory(*fakes: FakeServer) -> httpx.AsyncClient:
        # The shared context: a client's own would load the CA bundle for a transport that
        # every request here bypasses.
        http = httpx.AsyncClient(base_url=ISSUER, verify=https_context(), mounts={
            ISSUER: httpx.ASGITransport(app=app),
            **{fake.base_url: transport(fake) for fake in fakes}})
        opened.append(http)
        return http

    yield factory
    for http in opened:
        await http.aclose()


@pytest.fixture
def browser(request: pytest.FixtureRequest, browsers: Browsers) -> httpx.AsyncClient:
    """A browser that reaches us and the fake of each upstream the test asks for (by its
    fixture, directly or through another fixture)."""
    return browsers(*(request.getfixturevalue(name) for name in UPSTREAMS
                      if name in request.fixturenames))
