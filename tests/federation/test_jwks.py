"""The upstream key cache (federation.md §9 requirement 9), driven by key rotation in the
Google fake."""

from __future__ import annotations

import httpx
import pytest

from idp.federation.errors import InvalidIdToken, UpstreamUnavailable
from idp.federation.google import GoogleUpstream
from idp.federation.http import cache_max_age
from idp.federation.identity import UpstreamIdentity
from tests.fakes.common import Clock, user_agent
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import GOOGLE_REDIRECT

pytestmark = pytest.mark.no_database

JWKS = "/oauth2/v3/certs"


async def sign_in(upstream: GoogleUpstream, http: httpx.AsyncClient) -> UpstreamIdentity:
    start = await upstream.start(GOOGLE_REDIRECT)
    result = await upstream.handle_callback(await user_agent(http, start.url), start.transaction)
    assert isinstance(result, UpstreamIdentity)
    return result


async def test_keys_are_reused_within_max_age_and_refetched_after(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 9: cached keys are used within Cache-Control max-age."""
    google.jwks_max_age = 300
    await sign_in(upstream, http)
    clock.advance(299)
    await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 1
    clock.advance(2)
    await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 2


async def test_rotation_is_picked_up_by_one_refetch(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 9: a token with an unknown kid refetches the key set once, then verifies."""
    await sign_in(upstream, http)
    google.keys.rotate()
    google.keys.drop_old()
    await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 2


async def test_unknown_kid_refetch_is_rate_limited(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 9: at most one refetch per 60 s per provider, however many unknown kids arrive."""
    await sign_in(upstream, http)
    google.signer = lambda claims: google.keys.sign(claims, header={"kid": "garbage"})
    for _ in range(3):
        with pytest.raises(InvalidIdToken, match="kid"):
            await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 2
    clock.advance(60)
    with pytest.raises(InvalidIdToken, match="kid"):
        await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 3


async def test_outage_with_no_cached_key_fails_closed(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 9: a JWKS outage with no usable key fails the login."""
    google.jwks_available = False
    with pytest.raises(UpstreamUnavailable, match="key set"):
        await sign_in(upstream, http)


async def test_outage_within_max_age_uses_the_cache(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 9: within max-age the cached keys suffice."""
    await sign_in(upstream, http)
    google.jwks_available = False
    clock.advance(100)
    await sign_in(upstream, http)


async def test_outage_after_max_age_fails_closed(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 9: keys past their cache time are not used when the refetch fails."""
    google.jwks_max_age = 120
    await sign_in(upstream, http)
    google.jwks_available = False
    clock.advance(121)
    with pytest.raises(UpstreamUnavailable):
        await sign_in(upstream, http)
    # The failure is remembered briefly, so a burst of logins does not hammer the upstream.
    with pytest.raises(UpstreamUnavailable, match="moments ago"):
        await sign_in(upstream, http)
    assert len(google.log.calls(JWKS)) == 2
    google.jwks_available = True
    clock.advance(10)
    await sign_in(upstream, http)


@pytest.mark.parametrize(("header", "expected"), [
    ("public, max-age=19845, must-revalidate, no-transform", 19845),
    ("max-age=0", 0), ("no-store", 0), ("private, no-cache", 0), ("public", None),
    (None, None), ("s-maxage=5", None),
])
def test_cache_control_is_read(header: str | None, expected: int | None) -> None:
    """Req 9: the max-age Google sends (federation.md §1.1) sets the cache time."""
    assert cache_max_age(header) == expected
