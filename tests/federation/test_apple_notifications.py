"""Apple server-to-server notifications, verification part (federation.md §2.7, §9
requirement 27), with bodies from the Apple fake's sender."""

from __future__ import annotations

import json

import pytest

from idp.federation.apple import AppleUpstream
from idp.federation.errors import InvalidNotification
from tests.fakes.apple import FakeApple
from tests.fakes.common import pooled_rsa_key
from tests.federation.conftest import APPLE_BUNDLE_ID, APPLE_SERVICES_ID

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize("kind", ["consent-revoked", "account-delete", "email-disabled",
                                  "email-enabled"])
async def test_each_event_type_is_verified_and_decoded(
        apple_upstream: AppleUpstream, apple: FakeApple, kind: str) -> None:
    """Req 27: `{"payload": JWS}` verified with Apple's JWKS; `events` decoded from its JSON
    string; the subject is the one our Apple logins are keyed by."""
    body = apple.notification(kind, "relay", APPLE_SERVICES_ID, jti="jti-1")
    event = await apple_upstream.verify_notification(body)
    assert event.type == kind and event.known
    assert event.sub == apple.sub_for(apple.users["relay"], "TEAM123456")
    assert (event.aud, event.jti) == (APPLE_SERVICES_ID, "jti-1")
    assert event.event_time_ms == int(apple.clock() * 1000)
    if kind.startswith("email-"):
        assert event.email == "x7k2m9q4@privaterelay.appleid.com" and event.is_private_email


async def test_any_of_our_client_ids_is_an_audience(
        apple_upstream: AppleUpstream, apple: FakeApple) -> None:
    """Req 27: aud is one of our Apple client ids (Services ID or App ID)."""
    event = await apple_upstream.verify_notification(
        apple.notification("consent-revoked", "icloud", APPLE_BUNDLE_ID))
    assert event.aud == APPLE_BUNDLE_ID


async def test_unknown_types_verify_but_are_flagged(
        apple_upstream: AppleUpstream, apple: FakeApple) -> None:
    """Req 27: unknown types are accepted (answered 200) and ignored."""
    event = await apple_upstream.verify_notification(
        apple.notification("something-new", "relay", APPLE_SERVICES_ID))
    assert event.type == "something-new" and not event.known


async def test_duplicates_keep_their_jti(apple_upstream: AppleUpstream,
                                         apple: FakeApple) -> None:
    """Req 27: a redelivered notification verifies again with the same jti (the caller
    de-duplicates)."""
    body = apple.notification("consent-revoked", "relay", APPLE_SERVICES_ID, jti="same")
    first = await apple_upstream.verify_notification(body)
    second = await apple_upstream.verify_notification(body)
    assert first == second and first.jti == "same"


async def test_bad_signature_is_refused(apple_upstream: AppleUpstream, apple: FakeApple) -> None:
    """Req 27: a payload signed by a key Apple does not publish is refused (400), whether it
    names an unknown kid or the kid of a published key."""
    forged = pooled_rsa_key(3)  # not among the fake's two published keys
    with pytest.raises(InvalidNotification, match="kid"):
        await apple_upstream.verify_notification(
            apple.notification("account-delete", "relay", APPLE_SERVICES_ID, key=forged))
    claims = {"iss": "https://appleid.apple.com", "aud": APPLE_SERVICES_ID, "iat": 1,
              "events": json.dumps({"type": "account-delete", "sub": "x"})}
    payload = apple.keys.sign(claims, key=forged, header={"kid": apple.keys.current.kid})
    with pytest.raises(InvalidNotification, match="signature"):
        await apple_upstream.verify_notification(json.dumps({"payload": payload}))


async def test_foreign_audience_and_issuer_are_refused(
        apple_upstream: AppleUpstream, apple: FakeApple) -> None:
    """Req 27: aud must be ours and iss must be Apple's."""
    with pytest.raises(InvalidNotification, match="not issued to us"):
        await apple_upstream.verify_notification(
            apple.notification("consent-revoked", "relay", "com.other.team"))
    claims = {"iss": "https://evil.example", "aud": APPLE_SERVICES_ID, "iat": 1,
              "events": json.dumps({"type": "account-delete", "sub": "x"})}
    body = json.dumps({"payload": apple.keys.sign(claims)})
    with pytest.raises(InvalidNotification, match="iss"):
        await apple_upstream.verify_notification(body)


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'{"payload": 5}',
                                  b'{"payload": "a.b.c"}', b"{" + b" " * 20000 + b"}"])
async def test_malformed_bodies_are_refused(apple_upstream: AppleUpstream,
                                            body: bytes) -> None:
    """Req 27: anything but a verifiable `{"payload": JWS}` is a 400."""
    with pytest.raises(InvalidNotification):
        await apple_upstream.verify_notification(body)


async def test_events_object_without_type_is_refused(apple_upstream: AppleUpstream,
                                                     apple: FakeApple) -> None:
    """Req 27: events must decode to an object with type and sub."""
    claims = {"iss": "https://appleid.apple.com", "aud": APPLE_SERVICES_ID, "iat": 1,
              "events": json.dumps({"sub": "x"})}
    with pytest.raises(InvalidNotification, match="type or sub"):
        await apple_upstream.verify_notification(
            json.dumps({"payload": apple.keys.sign(claims)}))
