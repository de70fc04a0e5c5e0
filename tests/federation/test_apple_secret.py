"""Apple's ES256 client secret (federation.md §2.2, §9 requirement 10), verified by the fake."""

from __future__ import annotations

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.federation.apple import AppleUpstream
from idp.federation.apple_secret import AppleClientSecret
from idp.federation.identity import UpstreamIdentity
from tests.fakes.apple import FakeApple
from tests.fakes.common import Clock, user_agent
from tests.federation.conftest import (
    APPLE_KEY,
    APPLE_KEY_ID,
    APPLE_REDIRECT,
    APPLE_SERVICES_ID,
    APPLE_TEAM,
    apple_config,
)

pytestmark = pytest.mark.no_database


async def sign_in(upstream: AppleUpstream, http: httpx.AsyncClient) -> UpstreamIdentity:
    start = await upstream.start(APPLE_REDIRECT)
    result = await upstream.handle_callback(await user_agent(http, start.url), start.transaction)
    assert isinstance(result, UpstreamIdentity)
    return result


def sent_secrets(apple: FakeApple) -> list[str]:
    return [call.form["client_secret"] for call in apple.log.calls("/auth/token")]


async def test_secret_has_apples_shape_and_is_accepted(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 10: header kid, iss=team id, sub=client id, aud=https://appleid.apple.com,
    exp - iat <= 15,777,000 s; the fake verifies it with the registered public key."""
    await sign_in(apple_upstream, http)
    token = jwt.decode(sent_secrets(apple)[0], APPLE_KEY, algorithms=["ES256"])
    assert (token.header["alg"], token.header["kid"]) == ("ES256", APPLE_KEY_ID)
    claims = token.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        APPLE_TEAM, APPLE_SERVICES_ID, "https://appleid.apple.com")
    assert 0 < claims["exp"] - claims["iat"] <= 15_777_000


async def test_secret_is_cached_and_regenerated_before_expiry(
        apple: FakeApple, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 10: one signature serves many logins; a new one is made before the old expires."""
    upstream = AppleUpstream(apple_config(apple, apple_client_secret_ttl=3600), http, clock)
    await sign_in(upstream, http)
    clock.advance(3600 - 361)
    await sign_in(upstream, http)
    clock.advance(2)  # within the last tenth of the lifetime
    await sign_in(upstream, http)
    first, second, third = sent_secrets(apple)
    assert first == second != third


async def test_invalid_client_regenerates_and_retries_once(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple,
        clock: Clock) -> None:
    """Req 10: when Apple no longer accepts the cached secret it answers invalid_client; we
    sign a new one and retry once, and the login succeeds."""
    await sign_in(apple_upstream, http)
    clock.advance(5)
    apple.secret_not_before = clock()  # Apple now deems the cached secret expired
    await sign_in(apple_upstream, http)
    first, stale, fresh = sent_secrets(apple)
    assert first == stale != fresh
    assert len(apple.log.calls("/auth/token")) == 3


async def test_fake_refuses_an_expired_or_overlong_secret(
        apple: FakeApple, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 10 (the fake's side): expired, or exp - iat over 15,777,000 s, is invalid_client."""
    now = int(clock())
    for iat, exp in ((now - 7200, now - 1), (now, now + 15_777_001)):
        secret = jwt.encode({"alg": "ES256", "kid": APPLE_KEY_ID},
                            {"iss": APPLE_TEAM, "sub": APPLE_SERVICES_ID, "iat": iat, "exp": exp,
                             "aud": "https://appleid.apple.com"}, APPLE_KEY, algorithms=["ES256"])
        response = await http.post(apple.url("/auth/token"), data={
            "client_id": APPLE_SERVICES_ID, "client_secret": secret, "code": "x",
            "grant_type": "authorization_code"})
        assert response.json() == {"error": "invalid_client"}


@pytest.mark.parametrize("lifetime", [59, 15_777_001])
def test_lifetime_is_bounded(lifetime: int, clock: Clock) -> None:
    """Req 10: exp - iat at most 15,777,000 s."""
    with pytest.raises(ValueError, match="lifetime"):
        AppleClientSecret(team_id="T", key_id="K", client_id="C", audience="A",
                          private_key_pem=APPLE_KEY.as_pem(private=True).decode(),
                          lifetime=lifetime, clock=clock)


def test_key_must_be_a_private_p256_key(clock: Clock) -> None:
    """Req 10: ES256 needs a P-256 private key (Apple's .p8)."""
    p384 = ECKey.generate_key("P-384", private=True).as_pem(private=True).decode()
    for pem in (p384, "not a key"):
        with pytest.raises(ValueError, match=r"P-256|PEM"):
            AppleClientSecret(team_id="T", key_id="K", client_id="C", audience="A",
                              private_key_pem=pem, lifetime=3600, clock=clock)
