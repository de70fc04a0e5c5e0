"""Sign in with Apple against the Apple fake (federation.md §2)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from idp.federation.apple import AppleUpstream, parse_apple_user
from idp.federation.base import AuthorizationStart
from idp.federation.callback import AuthorizationDenied
from idp.federation.errors import InvalidIdToken, TokenRequestFailed
from idp.federation.identity import UpstreamIdentity, apply_sync
from tests.fakes.apple import FakeApple
from tests.fakes.common import Clock, user_agent
from tests.federation.conftest import (
    APPLE_BUNDLE_ID,
    APPLE_REDIRECT,
    APPLE_TEAM,
    apple_config,
)

pytestmark = pytest.mark.no_database

Params = list[tuple[str, str]]


async def sign_in(upstream: AppleUpstream, http: httpx.AsyncClient, *,
                  tamper: Any = None) -> tuple[AuthorizationStart, Params,
                                               UpstreamIdentity | AuthorizationDenied]:
    start = await upstream.start(APPLE_REDIRECT)
    params = await user_agent(http, start.url)
    if tamper is not None:
        params = tamper(params)
    return start, params, await upstream.handle_callback(params, start.transaction)


async def test_first_login_posts_user_and_keys_by_team(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 3, 14, 36, 38: form_post with state and nonce (no PKCE, §2.1); the identity is
    (apple:{team}, sub); the first-authorization `user` gives the name; the refresh token is
    kept; granted scopes are what arrived."""
    start, params, identity = await sign_in(apple_upstream, http)
    sent = parse_qs(urlsplit(start.url).query)
    assert sent["response_mode"] == ["form_post"] and "code_challenge" not in sent
    assert sent["nonce"] == [start.transaction.nonce]
    assert [name for name, _ in params] == ["code", "state", "user"]
    assert isinstance(identity, UpstreamIdentity)
    assert identity.namespace == f"apple:{APPLE_TEAM}"
    assert identity.subject.startswith("001234.")
    assert identity.email == "x7k2m9q4@privaterelay.appleid.com"
    assert identity.email_verified and identity.email_authoritative
    assert identity.raw["is_private_email"] is True
    assert identity.claims["name"].value == "Ann Apple"
    assert identity.claims["given_name"].value == "Ann"
    assert identity.granted_scopes == {"openid", "email", "name"}
    assert identity.refresh_token in apple.refresh_tokens
    token_form = apple.log.calls("/auth/token")[0].form
    assert token_form["client_id"] == "com.brand.signin" and "code_verifier" not in token_form


async def test_later_login_has_no_name_and_keeps_the_stored_one(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient) -> None:
    """Req 36: the name arrives on the first authorization only; a later login without
    `user` never clears it."""
    _, _, first = await sign_in(apple_upstream, http)
    _, params, later = await sign_in(apple_upstream, http)
    assert isinstance(first, UpstreamIdentity) and isinstance(later, UpstreamIdentity)
    assert "user" not in dict(params) and "name" not in later.claims
    assert later.subject == first.subject and later.granted_scopes == {"openid", "email"}
    profile = apply_sync({}, first.claims, first_login=True)
    assert apply_sync(profile, later.claims, first_login=False)["name"] == "Ann Apple"


async def test_user_field_never_overrides_email_or_identity(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient) -> None:
    """Req 36: the `user` JSON is parsed for the name only."""
    forged = json.dumps({"name": {"firstName": "Mallory"}, "email": "victim@gmail.com",
                         "sub": "someone-else"})

    def tamper(params: Params) -> Params:
        return [(k, forged if k == "user" else v) for k, v in params]

    _, _, identity = await sign_in(apple_upstream, http, tamper=tamper)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.email == "x7k2m9q4@privaterelay.appleid.com"
    assert not identity.subject.startswith("someone")
    assert identity.claims["name"].value == "Mallory"


@pytest.mark.parametrize("raw", [None, "", "not json", "[]", '{"name": "flat"}',
                                 '{"name": {}}', "x" * 5000])
def test_malformed_user_field_loses_only_the_name(raw: str | None) -> None:
    """Req 36 (parsing): a malformed `user` never fails the login."""
    assert parse_apple_user(raw) is None


@pytest.mark.parametrize(("verified", "private", "as_string", "expected"), [
    ("true", True, True, (True, True)), (True, False, False, (True, False)),
    ("false", True, True, (False, True)), ("yes", True, False, (False, True)),
])
async def test_string_or_bool_claims(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple,
        verified: Any, private: bool, as_string: bool, expected: tuple[bool, bool]) -> None:
    """Req 11: email_verified and is_private_email arrive as strings or booleans."""
    apple.email_verified_value = verified
    apple.users["relay"].is_private_email = private
    apple.is_private_email_as_string = as_string
    _, _, identity = await sign_in(apple_upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert (identity.email_verified, identity.raw["is_private_email"]) == expected
    assert identity.email_authoritative is expected[0]


async def test_apple_sharing_a_gmail_address_is_not_authoritative(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 20, 21: Apple is authoritative only for its own and relay domains."""
    apple.login_user = "shares_gmail"
    _, _, identity = await sign_in(apple_upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.email_verified and not identity.email_authoritative


@pytest.mark.parametrize(("supported", "accepted"), [
    (True, False), ("true", False), (False, True), (None, True)])
async def test_missing_nonce_follows_nonce_supported(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple,
        supported: Any, accepted: bool) -> None:
    """Req 8: for Apple, a missing nonce with nonce_supported=true is a rejection."""
    apple.omit_nonce, apple.nonce_supported = True, supported
    if accepted:
        _, _, identity = await sign_in(apple_upstream, http)
        assert isinstance(identity, UpstreamIdentity)
    else:
        with pytest.raises(InvalidIdToken, match="nonce"):
            await sign_in(apple_upstream, http)


async def test_nonce_mismatch_is_refused(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 8: a present nonce must equal the transaction's."""
    apple.claims_hook = lambda claims: {**claims, "nonce": "other"}
    with pytest.raises(InvalidIdToken, match="nonce"):
        await sign_in(apple_upstream, http)


async def test_native_nonce_is_compared_hashed(
        apple_upstream: AppleUpstream, apple: FakeApple) -> None:
    """Req 8: an iOS app passes SHA-256(raw nonce) to Apple; we hash the raw nonce."""
    raw = "raw-nonce-from-the-ios-app-0123456789"
    token = apple.native_id_token("icloud", APPLE_BUNDLE_ID, raw)
    claims = await apple_upstream.validate_native_id_token(token, raw)
    assert claims["aud"] == APPLE_BUNDLE_ID
    with pytest.raises(InvalidIdToken, match="nonce"):
        await apple_upstream.validate_id_token(token, raw)  # swapped: compared unhashed
    with pytest.raises(InvalidIdToken, match="nonce"):
        await apple_upstream.validate_native_id_token(token, "another-raw-nonce")


async def test_token_of_another_team_is_refused_and_transfer_sub_kept(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Requirement 18: Apple tokens carry no team claim; a token for a client id outside our team's
    configured ids fails the audience check. `transfer_sub` is kept."""
    apple.transfer_sub = "000999.transferred.0999"
    _, _, identity = await sign_in(apple_upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.transfer_sub == "000999.transferred.0999"
    apple.claims_hook = lambda claims: {**claims, "aud": "com.otherteam.signin"}
    with pytest.raises(InvalidIdToken, match="not issued to us"):
        await sign_in(apple_upstream, http)


async def test_team_id_differing_from_apples_record_fails_client_authentication(
        apple: FakeApple, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 10, 18: a secret signed for another team is invalid_client; we retry once only."""
    upstream = AppleUpstream(apple_config(apple, apple_team_id="OTHERTEAM1"), http, clock)
    with pytest.raises(TokenRequestFailed, match="invalid_client"):
        await sign_in(upstream, http)
    assert len(apple.log.calls("/auth/token")) == 2


async def test_user_cancel_is_a_typed_result(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 7: an Apple cancel is AuthorizationDenied, retryable, access_denied for brands."""
    apple.cancel = True
    _, _, result = await sign_in(apple_upstream, http)
    assert isinstance(result, AuthorizationDenied)
    assert result.error == "user_cancelled_authorize" and result.retryable
    assert result.brand_error == "access_denied"
    assert apple.log.calls("/auth/token") == []


async def test_name_and_email_need_form_post(apple: FakeApple, http: httpx.AsyncClient,
                                             apple_upstream: AppleUpstream) -> None:
    """Req 5 (client part), §2.3: the fake refuses name/email without form_post; we send
    form_post exactly then."""
    start = await apple_upstream.start(APPLE_REDIRECT, scopes=("openid",))
    assert "response_mode" not in parse_qs(urlsplit(start.url).query)
    bad = start.url.replace("scope=openid", "scope=openid+email")
    response = await http.get(bad)
    assert response.status_code == 400
    assert "response_mode must be form_post" in response.text


async def test_revoke_sends_the_refresh_token_and_resets_first_authorization(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple) -> None:
    """Req 31 (client part): /auth/revoke with our client credentials; afterwards Apple
    treats the next login as a first authorization again (§2.2, §2.8)."""
    _, _, identity = await sign_in(apple_upstream, http)
    assert isinstance(identity, UpstreamIdentity) and identity.refresh_token
    await apple_upstream.revoke(identity.refresh_token)
    call = apple.log.calls("/auth/revoke")[0].form
    assert call["token"] == identity.refresh_token
    assert call["token_type_hint"] == "refresh_token"
    _, params, _ = await sign_in(apple_upstream, http)
    assert "user" in dict(params)


async def test_auth_time_is_when_the_user_authenticated_at_apple(
        apple_upstream: AppleUpstream, http: httpx.AsyncClient, apple: FakeApple,
        clock: Clock) -> None:
    """§2.5, the fake as strict as Apple: `auth_time` is when the user authenticated at
    Apple, not when the token endpoint answered. A code redeemed two minutes after the
    authentication has `iat` then and `auth_time` before; a refresh brings no new ID token, so
    nothing moves it. Apple's web flow asks at every authorization, so the next one has a new
    auth_time; an Apple that reused the earlier authentication (`reuse_session`) keeps the
    old one while `iat` moves on."""

    async def id_token_after(delay: float) -> dict[str, Any]:
        start = await apple_upstream.start(APPLE_REDIRECT)
        params = await user_agent(http, start.url)
        clock.advance(delay)
        identity = await apple_upstream.handle_callback(params, start.transaction)
        assert isinstance(identity, UpstreamIdentity)
        token = apple.log.calls("/auth/token")[-1]
        assert token.form["grant_type"] == "authorization_code"
        claims: dict[str, Any] = jwt.decode(apple.issued[-1],
                                            options={"verify_signature": False})
        return claims

    authenticated = int(clock())
    first = await id_token_after(120)
    assert (first["auth_time"], first["iat"]) == (authenticated, authenticated + 120)
    refresh_token = next(iter(apple.refresh_tokens))
    refreshed = await http.post(apple.url("/auth/token"), data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": apple_upstream.config.client_id,
        "client_secret": apple_upstream.client_secret()})
    assert refreshed.status_code == 200 and "id_token" not in refreshed.json()

    clock.advance(600)
    second = await id_token_after(5)
    assert (second["auth_time"], second["iat"]) == (int(clock()) - 5, int(clock()))
    apple.reuse_session = True
    clock.advance(600)
    reused = await id_token_after(0)
    assert (reused["auth_time"], reused["iat"]) == (second["auth_time"], int(clock()))
