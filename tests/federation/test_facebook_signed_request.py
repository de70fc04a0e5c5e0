"""Facebook deauthorize and data-deletion `signed_request` verification (federation.md §3.5,
§9 requirements 29 and 30, verification part), with bodies from the Facebook fake's sender."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from idp.federation.errors import InvalidSignedRequest
from idp.federation.facebook import FacebookUpstream
from idp.federation.facebook_signed import parse_signed_request
from tests.fakes.facebook import FakeFacebook
from tests.federation.conftest import FB_APP_ID, FB_SECRET

pytestmark = pytest.mark.no_database


def test_deauthorize_request_names_the_asid(facebook_upstream: FacebookUpstream,
                                            facebook: FakeFacebook) -> None:
    """Req 29: a valid deauthorize signed_request yields the app-scoped user id."""
    signed = facebook.signed_request(FB_APP_ID, "fay")
    request = facebook_upstream.parse_signed_request(signed)
    assert request.user_id == facebook.asid(facebook.users["fay"], FB_APP_ID)
    assert request.issued_at == int(facebook.clock()) and request.expires is None


def test_data_deletion_request_carries_expires(facebook_upstream: FacebookUpstream,
                                               facebook: FakeFacebook) -> None:
    """Req 30: the data-deletion payload adds `expires`."""
    request = facebook_upstream.parse_signed_request(
        facebook.signed_request(FB_APP_ID, "fay", deletion=True))
    assert request.expires == int(facebook.clock()) + 3600


def test_signature_by_another_secret_is_refused(facebook: FakeFacebook) -> None:
    """Req 29, 30: HMAC-SHA256 with our app secret, compared in constant time."""
    signed = facebook.signed_request(FB_APP_ID, "fay", secret="someone-elses-secret")
    with pytest.raises(InvalidSignedRequest, match="signature"):
        parse_signed_request(signed, FB_SECRET)


@pytest.mark.parametrize("algorithm", ["HMAC-SHA1", "none", "HS256", ""])
def test_algorithm_must_be_hmac_sha256(facebook: FakeFacebook, algorithm: str) -> None:
    """Req 29, 30: even correctly signed, another algorithm name is refused."""
    signed = facebook.signed_request(FB_APP_ID, "fay", algorithm=algorithm)
    with pytest.raises(InvalidSignedRequest, match="algorithm"):
        parse_signed_request(signed, FB_SECRET)


def test_algorithm_name_is_case_insensitive_and_padding_tolerated(
        facebook: FakeFacebook) -> None:
    """Req 29, 30 (§3.5): `algorithm` compared upper-cased; Facebook's signature may end in '='."""
    signed = facebook.signed_request(FB_APP_ID, "fay", algorithm="hmac-sha256")
    signature, payload = signed.split(".")
    assert parse_signed_request(f"{signature}=.{payload}", FB_SECRET).user_id


def test_tampered_payload_is_refused(facebook: FakeFacebook) -> None:
    """Req 29, 30: the signature covers the encoded payload as received."""
    signature, payload = facebook.signed_request(FB_APP_ID, "fay").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["user_id"] = "1000000000000001"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignedRequest, match="signature"):
        parse_signed_request(f"{signature}.{forged}", FB_SECRET)


@pytest.mark.parametrize("value", ["", "no-dot", ".", "abc.", "!!!.abc", "a.b" + "c" * 9000])
def test_malformed_values_are_refused(value: str) -> None:
    """Req 29, 30: anything but `sig.payload` in base64url is a 400."""
    with pytest.raises(InvalidSignedRequest):
        parse_signed_request(value, FB_SECRET)


def test_signed_payload_without_user_is_refused() -> None:
    """Req 29, 30: a verified payload must still name the user."""
    payload = base64.urlsafe_b64encode(b'{"algorithm":"HMAC-SHA256"}').rstrip(b"=").decode()
    sig = hmac.new(FB_SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    signed = base64.urlsafe_b64encode(sig).rstrip(b"=").decode() + "." + payload
    with pytest.raises(InvalidSignedRequest, match="no user"):
        parse_signed_request(signed, FB_SECRET)
