"""Requirement 13: upstream secrets, codes and tokens, and signed_request contents, never
appear in logs or in the errors a brand app could be shown. Logins with all three fakes (and
their refusals) run with every logger at DEBUG; the captured records are grepped."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from idp.federation.apple import AppleUpstream
from idp.federation.base import OidcUpstream
from idp.federation.errors import FederationError
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from tests.fakes.apple import FakeApple
from tests.fakes.common import user_agent
from tests.fakes.facebook import FakeFacebook
from tests.fakes.google import FakeGoogle
from tests.federation.conftest import (
    APPLE_KEY,
    APPLE_REDIRECT,
    FB_APP_ID,
    FB_OTHER_APP_ID,
    FB_REDIRECT,
    FB_SECRET,
    GOOGLE_REDIRECT,
    GOOGLE_SECRET,
)
from tests.helpers import texts

pytestmark = pytest.mark.no_database


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "idp", "idp.federation"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


VERIFIERS: list[str] = []


async def attempt(upstream: OidcUpstream, http: httpx.AsyncClient, redirect_uri: str,
                  shown: list[str]) -> None:
    """One login; what a caller might show or log (results, errors) goes to `shown`."""
    start = await upstream.start(redirect_uri)
    t = start.transaction
    VERIFIERS.extend(x for x in (t.nonce, t.code_verifier) if x)
    try:
        result = await upstream.handle_callback(await user_agent(http, start.url), t)
        shown.append(repr(result))
    except FederationError as exc:
        shown += [str(exc), repr(exc)]


async def test_no_secret_code_or_token_is_logged(
        debug_logs: pytest.LogCaptureFixture, http: httpx.AsyncClient, google: FakeGoogle,
        apple: FakeApple, facebook: FakeFacebook, upstream: GoogleUpstream,
        apple_upstream: AppleUpstream, facebook_upstream: FacebookUpstream) -> None:
    """Req 13: grep DEBUG logs and error texts of successful and refused logins."""
    shown: list[str] = []
    await attempt(upstream, http, GOOGLE_REDIRECT, shown)                  # success
    google.claims_hook = lambda c: {**c, "nonce": "x"}                      # ID token refused
    await attempt(upstream, http, GOOGLE_REDIRECT, shown)
    google.claims_hook, google.callback_iss = None, "wrong"                 # iss refused
    await attempt(upstream, http, GOOGLE_REDIRECT, shown)
    await attempt(apple_upstream, http, APPLE_REDIRECT, shown)              # success
    apple.secret_not_before = apple.clock() + 1                             # invalid_client
    await attempt(apple_upstream, http, APPLE_REDIRECT, shown)
    await attempt(facebook_upstream, http, FB_REDIRECT, shown)              # success
    facebook.token_app_override = FB_OTHER_APP_ID                           # other app
    await attempt(facebook_upstream, http, FB_REDIRECT, shown)
    signed = facebook.signed_request(FB_APP_ID, "fay")
    try:
        facebook_upstream.parse_signed_request(signed[:-2] + "xx")
    except FederationError as exc:
        shown += [str(exc), repr(exc)]

    apple_secrets = [c.form["client_secret"] for c in apple.log.calls("/auth/token")]
    pem_body = APPLE_KEY.as_pem(private=True).decode().splitlines()[1]
    forbidden = [GOOGLE_SECRET, FB_SECRET, pem_body, signed, signed.split(".")[1],
                 *apple_secrets, *google.issued, *apple.issued, *facebook.issued, *VERIFIERS]
    logged = texts(debug_logs.records)
    assert "HTTP Request" in logged  # httpx did log; its URLs lost their queries
    assert google.issued and apple.issued and facebook.issued and VERIFIERS
    assert len(shown) == 3 + 5 * 2  # three logins, five refusals
    for value in forbidden:
        assert value not in logged
        for text in shown:
            assert value not in text
    assert "login refused" in logged  # refusals are logged, by reason only
