"""Facebook Login (classic code flow + Graph API) against the Facebook fake (federation.md §3)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from idp.federation.callback import AuthorizationDenied
from idp.federation.errors import InvalidIdToken, InvalidUpstreamToken
from idp.federation.facebook import FacebookUpstream, appsecret_proof
from idp.federation.identity import UpstreamIdentity
from tests.fakes.common import Clock, user_agent
from tests.fakes.facebook import FakeFacebook
from tests.federation.conftest import (
    FB_APP_ID,
    FB_OTHER_APP_ID,
    FB_REDIRECT,
    FB_SECRET,
    facebook_config,
)

pytestmark = pytest.mark.no_database


async def sign_in(upstream: FacebookUpstream, http: httpx.AsyncClient
                  ) -> UpstreamIdentity | AuthorizationDenied:
    start = await upstream.start(FB_REDIRECT)
    return await upstream.handle_callback(await user_agent(http, start.url), start.transaction)


async def test_login_checks_debug_token_then_reads_me_with_proof(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 3, 12, 14, 22, 37, 38: state in the dialog; after the exchange debug_token with the
    app token, then /me with appsecret_proof; keyed (facebook:{app id}, ASID); email
    unverified; picture flagged expiring; granted scopes from debug_token."""
    start = await facebook_upstream.start(FB_REDIRECT)
    sent = parse_qs(urlsplit(start.url).query)
    assert sent["scope"] == ["email,public_profile"] and sent["state"] == [start.transaction.state]
    assert "nonce" not in sent and "code_challenge" not in sent
    identity = await facebook_upstream.handle_callback(await user_agent(http, start.url),
                                                       start.transaction)
    assert isinstance(identity, UpstreamIdentity)
    asid = facebook.asid(facebook.users["fay"], FB_APP_ID)
    assert (identity.namespace, identity.subject) == (f"facebook:{FB_APP_ID}", asid)
    assert identity.email == "fay@example.com"
    assert not identity.email_verified and not identity.email_authoritative
    assert identity.granted_scopes == {"email", "public_profile"}
    assert identity.expiring_claims == {"picture"}
    assert "oe=" in identity.claims["picture"].value  # an expiring CDN URL
    assert identity.claims["given_name"].value == "Fay"

    paths = [e.path for e in facebook.log.entries]
    assert paths == ["/v21.0/dialog/oauth", "/v21.0/oauth/access_token", "/v21.0/debug_token",
                     "/v21.0/me"]
    token_call, debug, me = facebook.log.entries[1:]
    assert token_call.method == "POST" and token_call.form["client_secret"] == FB_SECRET
    access_token = debug.params["input_token"]
    assert debug.params["access_token"] == f"{FB_APP_ID}|{FB_SECRET}"
    assert me.params["appsecret_proof"] == hmac.new(
        FB_SECRET.encode(), access_token.encode(), hashlib.sha256).hexdigest()


async def test_token_for_another_app_is_refused_before_reading_the_profile(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 12: a user token minted for another app id is rejected."""
    facebook.token_app_override = FB_OTHER_APP_ID
    with pytest.raises(InvalidUpstreamToken, match="another app"):
        await sign_in(facebook_upstream, http)
    assert facebook.log.calls(r"/v21.0/me") == []


@pytest.mark.parametrize(("hook", "reason"), [
    (lambda d: {**d, "is_valid": False}, "not valid"),
    (lambda d: {**d, "is_valid": "true"}, "not valid"),
    (lambda d: {k: v for k, v in d.items() if k != "user_id"}, "names no user"),
    (lambda d: {k: v for k, v in d.items() if k != "app_id"}, "another app"),
])
async def test_debug_token_must_be_valid_and_name_a_user(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient, facebook: FakeFacebook,
        hook: Any, reason: str) -> None:
    """Req 12: data.is_valid true and data.user_id present."""
    facebook.debug_hook = hook
    with pytest.raises(InvalidUpstreamToken, match=reason):
        await sign_in(facebook_upstream, http)


async def test_me_for_another_user_is_refused(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 12: /me must describe the user debug_token named."""
    facebook.debug_hook = lambda d: {**d, "user_id": "1000000000000001"}
    with pytest.raises(InvalidUpstreamToken, match="another user"):
        await sign_in(facebook_upstream, http)


async def test_declined_email_still_logs_in(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 38: declining an optional permission does not fail login; it is not granted."""
    facebook.declined = {"email"}
    identity = await sign_in(facebook_upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.email is None and identity.granted_scopes == {"public_profile"}


async def test_phone_only_user_has_no_email(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 22: email may be absent even when granted."""
    facebook.login_user = "phone_only"
    identity = await sign_in(facebook_upstream, http)
    assert isinstance(identity, UpstreamIdentity) and identity.email is None


async def test_a_gmail_address_from_facebook_is_still_unverified(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 22: a Facebook email is never verified or authoritative, whatever its domain."""
    facebook.login_user = "unconfirmed"
    identity = await sign_in(facebook_upstream, http)
    assert isinstance(identity, UpstreamIdentity)
    assert identity.email == "una@gmail.com"
    assert not identity.email_verified and not identity.email_authoritative


async def test_same_person_differs_per_app(
        facebook: FakeFacebook, http: httpx.AsyncClient, clock: Clock) -> None:
    """Req 14: ids are app-scoped; the namespace carries the app id."""
    facebook.register("2222222222222222", "second-secret", [FB_REDIRECT])
    first = await sign_in(FacebookUpstream(facebook_config(facebook), http, clock), http)
    second_config = facebook_config(facebook, client_id="2222222222222222",
                                    client_secret="second-secret")
    second = await sign_in(FacebookUpstream(second_config, http, clock), http)
    assert isinstance(first, UpstreamIdentity) and isinstance(second, UpstreamIdentity)
    assert first.subject != second.subject
    assert (first.namespace, second.namespace) == (f"facebook:{FB_APP_ID}",
                                                   "facebook:2222222222222222")


async def test_denial_carries_error_reason(
        facebook_upstream: FacebookUpstream, http: httpx.AsyncClient,
        facebook: FakeFacebook) -> None:
    """Req 7: error=access_denied, error_reason=user_denied as a typed result."""
    facebook.deny = True
    result = await sign_in(facebook_upstream, http)
    assert isinstance(result, AuthorizationDenied)
    assert (result.error, result.error_reason) == ("access_denied", "user_denied")
    assert result.brand_error == "access_denied"
    assert facebook.log.calls(r"/v21.0/oauth/access_token") == []


async def test_graph_refuses_missing_or_wrong_proof(
        facebook: FakeFacebook, http: httpx.AsyncClient) -> None:
    """Req 12 (the fake's side): 'Require App Secret' makes appsecret_proof mandatory."""
    token = facebook.issue_token(FB_APP_ID, facebook.users["fay"], ["public_profile"])
    me = facebook.url("/v21.0/me")
    for proof in ("", appsecret_proof(token, "not-the-secret")):
        response = await http.get(me, params={"access_token": token, "appsecret_proof": proof})
        assert response.status_code == 400 and response.json()["error"]["code"] == 100
    ok = await http.get(me, params={"access_token": token,
                                    "appsecret_proof": appsecret_proof(token, FB_SECRET)})
    assert ok.json()["id"] == facebook.asid(facebook.users["fay"], FB_APP_ID)


async def test_invalidated_token_is_a_graph_error(
        facebook_upstream: FacebookUpstream, facebook: FakeFacebook) -> None:
    """Req 12: Graph's OAuthException 190 for an invalid token refuses the login."""
    token = facebook.issue_token(FB_APP_ID, facebook.users["fay"], ["public_profile"])
    facebook.tokens[token].valid = False
    with pytest.raises(InvalidUpstreamToken, match="code 190"):
        await facebook_upstream.me(token)


async def test_revoke_permissions_calls_delete(
        facebook_upstream: FacebookUpstream, facebook: FakeFacebook) -> None:
    """Req 31 (client part): DELETE /{asid}/permissions with the app token."""
    asid = facebook.asid(facebook.users["fay"], FB_APP_ID)
    await facebook_upstream.revoke_permissions(asid)
    assert facebook.removed == [(FB_APP_ID, asid)]
    with pytest.raises(ValueError, match="numeric"):
        await facebook_upstream.revoke_permissions("../me")


@pytest.mark.parametrize("iss", ["https://www.facebook.com", "https://facebook.com"])
async def test_limited_login_accepts_the_configured_issuer_set(
        facebook_upstream: FacebookUpstream, facebook: FakeFacebook, iss: str) -> None:
    """Req 8: Limited Login tokens were seen with both issuers (§3.3)."""
    token = facebook.limited_login_token("fay", FB_APP_ID, "nonce-from-the-app", iss=iss)
    claims = await facebook_upstream.validate_limited_login_token(token, "nonce-from-the-app")
    assert claims["sub"] == facebook.asid(facebook.users["fay"], FB_APP_ID)


@pytest.mark.parametrize(("iss", "aud", "nonce", "reason"), [
    ("https://limited.facebook.com", FB_APP_ID, "n", "iss"),
    ("https://www.facebook.com", FB_OTHER_APP_ID, "n", "not issued"),
    ("https://www.facebook.com", FB_APP_ID, "other", "nonce"),
])
async def test_limited_login_refusals(
        facebook_upstream: FacebookUpstream, facebook: FakeFacebook, iss: str, aud: str,
        nonce: str, reason: str) -> None:
    """Req 8: iss in the set, aud our app id, nonce equal."""
    token = facebook.limited_login_token("fay", aud, nonce, iss=iss)
    with pytest.raises(InvalidIdToken, match=reason):
        await facebook_upstream.validate_limited_login_token(token, "n")
