"""Google login through the shared OIDC base, against the Google fake (federation.md §1)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from idp.federation.base import AuthorizationStart
from idp.federation.callback import AuthorizationDenied
from idp.federation.errors import CallbackRejected, InvalidIdToken, TokenRequestFailed
from idp.federation.google import GoogleUpstream
from idp.federation.identity import UpstreamIdentity
from tests.fakes.common import Clock, s256, user_agent
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import GOOGLE_CLIENT_ID, GOOGLE_REDIRECT, google_config

pytestmark = pytest.mark.no_database


async def sign_in(upstream: GoogleUpstream, http: httpx.AsyncClient
                  ) -> tuple[AuthorizationStart, UpstreamIdentity | AuthorizationDenied]:
    start = await upstream.start(GOOGLE_REDIRECT)
    params = await user_agent(http, start.url)
    return start, await upstream.handle_callback(params, start.transaction)


async def test_authorization_request_carries_state_nonce_and_pkce(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 3: fresh state and nonce of at least 128 bits and PKCE S256, seen by the upstream;
    the verifier reaches the token endpoint and matches the challenge."""
    first = await upstream.start(GOOGLE_REDIRECT)
    second = await upstream.start(GOOGLE_REDIRECT)
    sent = parse_qs(urlsplit(first.url).query)
    t = first.transaction
    assert sent["state"] == [t.state] and sent["nonce"] == [t.nonce]
    assert sent["code_challenge_method"] == ["S256"]
    assert t.code_verifier is not None and sent["code_challenge"] == [s256(t.code_verifier)]
    assert t.nonce is not None and len(t.state) * 6 >= 128 and len(t.nonce) * 6 >= 128
    assert {t.state, t.nonce}.isdisjoint({second.transaction.state, second.transaction.nonce})

    params = await user_agent(http, first.url)
    await upstream.handle_callback(params, t)
    authorize = google.log.calls("/o/oauth2/v2/auth")[0].params
    assert authorize["state"] == t.state and authorize["nonce"] == t.nonce
    assert google.log.calls("/token")[0].form["code_verifier"] == t.code_verifier


async def test_gmail_login_gives_identity_keyed_by_google_namespace(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 14, 20/21, 38: key (https://accounts.google.com, sub); a Gmail address is verified
    and authoritative; the token response's scope is the granted set; client_secret_basic."""
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert (identity.namespace, identity.subject) == ("https://accounts.google.com",
                                                      "104441000000000000001")
    assert identity.email == "alice@gmail.com"
    assert identity.email_verified and identity.email_authoritative
    assert identity.granted_scopes == frozenset({"openid", "email", "profile"})
    assert identity.claims["name"].value == "Alice Gmail"
    token_call = google.log.calls("/token")[0]
    assert token_call.headers["authorization"].startswith("Basic ")
    assert "client_secret" not in token_call.form


async def test_legacy_iss_spelling_lands_in_the_same_namespace(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 8, 14: `accounts.google.com` is accepted and keys the same identity."""
    google.id_token_iss = "accounts.google.com"
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.namespace == "https://accounts.google.com"


async def test_declined_scope_is_recorded_as_not_granted(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 38: granted scopes are what the token response says, not what was asked."""
    google.granted_scope = "openid email"
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.granted_scopes == frozenset({"openid", "email"})


@pytest.mark.parametrize("mode", ["absent", "correct"])
async def test_iss_parameter_absent_or_correct_is_accepted(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        mode: str) -> None:
    """Req 6: Google sends `iss` without advertising it; absent or exact is fine."""
    google.callback_iss = mode  # type: ignore[assignment]
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)


@pytest.mark.parametrize("mode", ["wrong", "duplicate", "empty"])
async def test_bad_iss_parameter_is_refused_before_any_token_request(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        mode: str) -> None:
    """Req 6: a mismatched, repeated or empty `iss` is refused before the code is sent."""
    google.callback_iss = mode  # type: ignore[assignment]
    with pytest.raises(CallbackRejected):
        await sign_in(upstream, http)
    assert google.log.calls("/token") == []


async def test_missing_iss_is_refused_when_advertised(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 6: metadata with authorization_response_iss_parameter_supported makes `iss`
    mandatory."""
    google.advertise_iss = True
    with pytest.raises(CallbackRejected, match="lacks iss"):
        await sign_in(upstream, http)
    assert google.log.calls("/token") == []


async def test_required_policy_refuses_missing_iss(
        google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 6: the iss-parameter policy is configurable per upstream."""
    upstream = GoogleUpstream(google_config(google, iss_parameter="required"), http, clock)
    with pytest.raises(CallbackRejected):
        await sign_in(upstream, http)
    google.callback_iss = "correct"
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)


async def test_denial_is_a_typed_result_and_no_token_request(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 7: `error=access_denied` comes back as AuthorizationDenied, retryable, mapped to
    access_denied for the brand app; nothing is exchanged."""
    google.deny = True
    _, result = await sign_in(upstream, http)
    assert result == AuthorizationDenied(error="access_denied")
    assert result.retryable and result.brand_error == "access_denied"
    assert google.log.calls("/token") == []


async def test_denial_with_wrong_state_is_rejected(
        upstream: GoogleUpstream, http: httpx.AsyncClient) -> None:
    """Req 7 with req 3: an error callback must still carry this transaction's state."""
    start = await upstream.start(GOOGLE_REDIRECT)
    with pytest.raises(CallbackRejected, match="state"):
        await upstream.handle_callback([("error", "access_denied"), ("state", "forged")],
                                       start.transaction)


async def test_state_mismatch_makes_no_token_request(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 3: the callback's state must be the transaction's."""
    start = await upstream.start(GOOGLE_REDIRECT)
    other = await upstream.start(GOOGLE_REDIRECT)
    params = await user_agent(http, start.url)
    with pytest.raises(CallbackRejected):
        await upstream.handle_callback(params, other.transaction)
    assert google.log.calls("/token") == []


async def test_transaction_of_another_alias_is_refused(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 2 (client part): a transaction started for another upstream is refused before any
    token request (mix-up defence, federation.md §5)."""
    other = GoogleUpstream(google_config(google, alias="google-b2b"), http, clock)
    start = await other.start(GOOGLE_REDIRECT)
    params = await user_agent(http, start.url)
    with pytest.raises(CallbackRejected, match="another upstream"):
        await upstream.handle_callback(params, start.transaction)
    assert google.log.calls("/token") == []


async def test_transaction_expires_after_ten_minutes(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 3: a state expires within 10 minutes."""
    start = await upstream.start(GOOGLE_REDIRECT)
    params = await user_agent(http, start.url)
    clock.advance(601)
    with pytest.raises(CallbackRejected, match="expired"):
        await upstream.handle_callback(params, start.transaction)
    assert google.log.calls("/token") == []


async def test_code_replay_is_refused_by_the_upstream(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 3: the fake's codes are single use; replaying a callback fails at the token
    endpoint with invalid_grant (our own state store makes it fail earlier)."""
    start = await upstream.start(GOOGLE_REDIRECT)
    params = await user_agent(http, start.url)
    await upstream.handle_callback(params, start.transaction)
    with pytest.raises(TokenRequestFailed, match="invalid_grant"):
        await upstream.handle_callback(params, start.transaction)


async def test_hosted_domain_restriction_checks_the_hd_claim(
        google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 20 (federation.md §1.2): `hd` in the request is a hint; the claim decides."""
    upstream = GoogleUpstream(google_config(google, hosted_domain="startup.example"), http,
                              clock)
    start = await upstream.start(GOOGLE_REDIRECT)
    assert parse_qs(urlsplit(start.url).query)["hd"] == ["startup.example"]
    with pytest.raises(InvalidIdToken, match="hosted domain"):
        await upstream.handle_callback(await user_agent(http, start.url), start.transaction)
    google.login_user = "workspace"
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity) and identity.email_authoritative


async def test_client_secret_post_is_honoured(
        google: FakeGoogle, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 1: the token endpoint authentication method is configuration."""
    upstream = GoogleUpstream(
        google_config(google, token_endpoint_auth_method="client_secret_post"), http, clock)
    _, identity = await sign_in(upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    form = google.log.calls("/token")[0].form
    assert form["client_id"] == GOOGLE_CLIENT_ID and "authorization" not in \
        google.log.calls("/token")[0].headers


async def test_discovery_is_cached(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle,
        clock: Clock) -> None:
    """Req 1: discovery is fetched once and reused until its cache time passes."""
    await sign_in(upstream, http)
    await sign_in(upstream, http)
    assert len(google.log.calls("/.well-known/openid-configuration")) == 1
    clock.advance(3601)
    await upstream.metadata()
    assert len(google.log.calls("/.well-known/openid-configuration")) == 2


async def test_extra_parameters_cannot_replace_protocol_ones(upstream: GoogleUpstream) -> None:
    """Req 3: state, nonce and PKCE are always ours; hints like prompt may be added."""
    start = await upstream.start(GOOGLE_REDIRECT, extra_params={"prompt": "select_account",
                                                                "access_type": "offline"})
    assert parse_qs(urlsplit(start.url).query)["prompt"] == ["select_account"]
    for name in ("state", "nonce", "code_challenge", "redirect_uri"):
        with pytest.raises(ValueError, match="replace"):
            await upstream.start(GOOGLE_REDIRECT, extra_params={name: "attacker"})


async def test_offline_access_refresh_token_is_carried_but_never_shown(
        upstream: GoogleUpstream, http: httpx.AsyncClient, google: FakeGoogle) -> None:
    """Req 13, 31: the refresh token Google issues with access_type=offline is handed over for
    revocation at account deletion, and kept out of the identity's repr."""
    start = await upstream.start(GOOGLE_REDIRECT, extra_params={"access_type": "offline"})
    identity = await upstream.handle_callback(await user_agent(http, start.url),
                                              start.transaction)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.refresh_token is not None and identity.refresh_token.startswith("1//")
    assert identity.refresh_token not in repr(identity)
