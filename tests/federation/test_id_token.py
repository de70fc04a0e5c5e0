"""ID token validation (federation.md §9 requirement 8): every rule has a negative test, driven
through a whole login against the Google fake, with the fake's token tampered as stated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from idp.federation.errors import InvalidIdToken
from idp.federation.google import GoogleUpstream
from idp.federation.identity import UpstreamIdentity
from tests.fakes.common import pooled_rsa_key, unsigned_jwt, user_agent
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import GOOGLE_CLIENT_ID, GOOGLE_REDIRECT, GOOGLE_SECRET

pytestmark = pytest.mark.no_database

Hook = Callable[[dict[str, Any]], dict[str, Any]]


async def sign_in(upstream: GoogleUpstream, http: httpx.AsyncClient) -> UpstreamIdentity:
    start = await upstream.start(GOOGLE_REDIRECT)
    result = await upstream.handle_callback(await user_agent(http, start.url), start.transaction)
    assert isinstance(result, UpstreamIdentity)
    return result


def changed(**values: Any) -> Hook:
    return lambda claims: {**claims, **values}


def without(name: str) -> Hook:
    return lambda claims: {k: v for k, v in claims.items() if k != name}


def shifted(name: str, seconds: int) -> Hook:
    return lambda claims: {**claims, name: claims[name] + seconds}


REFUSED_CLAIMS: list[tuple[str, Hook, str]] = [
    ("iss not the upstream's", changed(iss="https://accounts.google.com.evil"), "iss"),
    ("iss with trailing slash", changed(iss="https://accounts.google.com/"), "iss"),
    ("aud another client", changed(aud="other.apps.googleusercontent.com",
                                   azp="other.apps.googleusercontent.com"), "not issued"),
    ("aud missing", without("aud"), "aud"),
    ("several aud without azp", lambda c: {**without("azp")(c),
                                           "aud": [GOOGLE_CLIENT_ID, "other"]}, "azp"),
    ("several aud, azp another", changed(aud=[GOOGLE_CLIENT_ID, "other"], azp="other"), "azp"),
    ("single aud, azp another", changed(azp="other.apps.googleusercontent.com"), "azp"),
    ("expired beyond leeway", lambda c: {**c, "exp": c["iat"] - 61}, "expired"),
    ("exp missing", without("exp"), "exp"),
    ("exp not a number", changed(exp="soon"), "exp"),
    ("iat in the future beyond leeway", shifted("iat", 61), "future"),
    ("nonce differs", changed(nonce="another-transaction-nonce"), "nonce"),
    ("nonce missing", without("nonce"), "nonce"),
    ("sub missing", without("sub"), "sub"),
    ("at_hash mismatch", changed(at_hash="AAAAAAAAAAAAAAAAAAAAAA"), "at_hash"),
]


@pytest.mark.parametrize(("case", "hook", "reason"), REFUSED_CLAIMS,
                         ids=[c[0] for c in REFUSED_CLAIMS])
async def test_claim_rule_violations_are_refused(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        case: str, hook: Hook, reason: str) -> None:
    """Req 8: iss in the allowed set; aud contains our client id, azp ours when several
    audiences (or present); exp/iat within the leeway; nonce equal; sub present."""
    google.claims_hook = hook
    with pytest.raises(InvalidIdToken, match=reason):
        await sign_in(upstream, http)


ACCEPTED_CLAIMS: list[tuple[str, Hook]] = [
    ("expired within leeway", lambda c: {**c, "exp": c["iat"] - 59}),
    ("iat within leeway", shifted("iat", 59)),
    ("several aud with azp ours", changed(aud=[GOOGLE_CLIENT_ID, "other"])),
    ("no azp, single aud", without("azp")),
    ("no at_hash", without("at_hash")),
]


@pytest.mark.parametrize(("case", "hook"), ACCEPTED_CLAIMS, ids=[c[0] for c in ACCEPTED_CLAIMS])
async def test_tokens_at_the_edges_of_the_rules_are_accepted(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        case: str, hook: Hook) -> None:
    """Req 8: the default leeway of 60 s applies to exp and iat; azp only when needed."""
    google.claims_hook = hook
    await sign_in(upstream, http)


def sign_with_foreign_rsa(claims: dict[str, Any]) -> str:
    key = pooled_rsa_key(1)  # the fake publishes only key 0 here
    return jwt.encode({"alg": "RS256", "kid": "fake-0"}, claims, key, algorithms=["RS256"])


def sign_hs256_with_client_secret(claims: dict[str, Any]) -> str:
    key = OctKey.import_key(GOOGLE_SECRET)
    return jwt.encode({"alg": "HS256", "kid": "fake-0"}, claims, key, algorithms=["HS256"])


def sign_es256(claims: dict[str, Any]) -> str:
    key = ECKey.generate_key("P-256", private=True)
    return jwt.encode({"alg": "ES256", "kid": "fake-0"}, claims, key, algorithms=["ES256"])


REFUSED_SIGNATURES: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
    ("alg none", lambda c: unsigned_jwt(c), "alg"),
    ("alg none with kid", lambda c: unsigned_jwt(c, {"alg": "none", "kid": "fake-0"}), "alg"),
    ("HS256 keyed with the client secret", sign_hs256_with_client_secret, "alg"),
    ("ES256 where only RS256 is configured", sign_es256, "alg"),
    ("RS256 by a key the upstream never published", sign_with_foreign_rsa, "signature"),
    ("not a JWS", lambda c: "not-a-token", "compact"),
]


@pytest.mark.parametrize(("case", "signer", "reason"), REFUSED_SIGNATURES,
                         ids=[c[0] for c in REFUSED_SIGNATURES])
async def test_signature_rule_violations_are_refused(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        case: str, signer: Callable[[dict[str, Any]], str], reason: str) -> None:
    """Req 8: RS256 via the upstream's JWKS by kid; none and HS* refused."""
    google.signer = signer
    with pytest.raises(InvalidIdToken, match=reason):
        await sign_in(upstream, http)


async def test_unknown_kid_is_refused_after_one_refetch(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 8, 9: a kid the JWKS does not hold, even after refetching, is refused."""
    google.signer = lambda c: google.keys.sign(c, header={"kid": "no-such-kid"})
    with pytest.raises(InvalidIdToken, match="kid"):
        await sign_in(upstream, http)
    assert len(google.log.calls("/oauth2/v3/certs")) == 2
