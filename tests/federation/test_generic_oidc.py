"""A generic OpenID Connect upstream on the shared base, configured without discovery."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.federation.config import UpstreamConfig
from idp.federation.errors import InvalidIdToken
from idp.federation.identity import UpstreamIdentity
from idp.federation.oidc import GenericOidcUpstream
from tests.fakes.common import Clock, user_agent
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import GOOGLE_CLIENT_ID, GOOGLE_REDIRECT, GOOGLE_SECRET

pytestmark = pytest.mark.no_database


def generic(fake: FakeGoogle, **overrides: Any) -> UpstreamConfig:
    return UpstreamConfig.model_validate({
        "alias": "corp", "type": "oidc", "issuer": "https://accounts.google.com",
        "client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_SECRET,
        "authorization_endpoint": fake.url("/o/oauth2/v2/auth"),
        "token_endpoint": fake.url("/token"), "jwks_uri": fake.url("/oauth2/v3/certs"),
        **overrides})


async def sign_in(upstream: GenericOidcUpstream, http: httpx.AsyncClient) -> UpstreamIdentity:
    start = await upstream.start(GOOGLE_REDIRECT)
    result = await upstream.handle_callback(await user_agent(http, start.url), start.transaction)
    assert isinstance(result, UpstreamIdentity)
    return result


async def test_explicit_endpoints_need_no_discovery(
        google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 1, 14: explicit endpoints replace discovery; the namespace is the issuer; a
    generic upstream is never authoritative for email by default (req 21)."""
    identity = await sign_in(GenericOidcUpstream(generic(google), http, clock), http)
    assert google.log.calls("/.well-known/openid-configuration") == []
    assert identity.namespace == "https://accounts.google.com"
    assert identity.email_verified and not identity.email_authoritative


async def test_only_the_configured_issuer_spelling_is_accepted(
        google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 8: the allowed issuer set is per upstream (here only the https spelling)."""
    google.id_token_iss = "accounts.google.com"
    with pytest.raises(InvalidIdToken, match="iss"):
        await sign_in(GenericOidcUpstream(generic(google), http, clock), http)


async def test_es256_when_configured(google: FakeGoogle, http: httpx.AsyncClient,
                                     clock: Clock) -> None:
    """Req 8: ES256 is verified where an upstream uses it, with an explicit algorithm list."""
    key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"}, private=True)
    google.keys.extra.append(key.as_dict(private=False))

    def es256(claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": "ES256", "kid": "ec-1"}, claims, key, algorithms=["ES256"])

    google.signer = es256
    with pytest.raises(InvalidIdToken, match="alg"):
        await sign_in(GenericOidcUpstream(generic(google), http, clock), http)
    both = generic(google, id_token_signing_algs=("RS256", "ES256"))
    await sign_in(GenericOidcUpstream(both, http, clock), http)
