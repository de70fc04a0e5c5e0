"""The device flow end to end (issue 13, Done when): a TV asks for a code through authlib's
client over real HTTP, the customer approves it on a phone in headless Chromium, and the TV's
poll gets tokens. Server and browser fixtures come from tests/test_browser.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from playwright.async_api import Page, expect

from idp.services.context import Context
from tests import test_browser
from tests.helpers import make_app, make_user
from tests.test_browser import CHROMIUM, sign_in

idp_socket = test_browser.idp_socket
settings = test_browser.settings
idp = test_browser.idp
chromium = test_browser.chromium
page = test_browser.page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def test_a_tv_is_signed_in_from_a_phone(ctx: Context, idp: str, page: Page) -> None:
    user_id = await make_user(ctx)
    tv = await make_app(ctx, name="Living-room TV", redirect_uri="com.example.tv:/cb",
                        client_type="public", application_type="native",
                        grant_types=[DEVICE_GRANT], scopes=["openid", "profile"])
    async with AsyncOAuth2Client(client_id=tv.client_id, token_endpoint_auth_method="none",
                                 scope="openid profile", timeout=10) as oauth:
        metadata = (await oauth.request("GET", f"{idp}/.well-known/openid-configuration",
                                         withhold_token=True)).json()
        asked = await oauth.request("POST", metadata["device_authorization_endpoint"],
                                    withhold_token=True,
                                    data={"client_id": tv.client_id, "scope": "openid profile"})
        assert asked.status_code == 200, asked.text
        started: dict[str, Any] = asked.json()

        async def poll() -> dict[str, Any]:
            token: dict[str, Any] = await oauth.fetch_token(
                metadata["token_endpoint"], grant_type=DEVICE_GRANT,
                device_code=started["device_code"])
            return token

        for expected in ("authorization_pending", "slow_down"):
            with pytest.raises(OAuthError) as waiting:
                await poll()
            assert waiting.value.error == expected

        # The phone opens the complete URI (as from the QR code) and confirms the code.
        await page.goto(started["verification_uri_complete"])
        await expect(page.get_by_label("Code shown on your device")).to_have_value(
            started["user_code"])
        await page.get_by_role("button", name="Continue").click()
        await expect(page.get_by_role("heading", name="Is this your device's code?")
                     ).to_be_visible()
        await expect(page.locator("#user-code")).to_have_text(started["user_code"])
        await expect(page.locator("#device-app")).to_contain_text("Living-room TV")
        await page.get_by_role("button", name="Yes, continue").click()
        await sign_in(page)
        await page.get_by_role("button", name="Allow").click()
        await expect(page.get_by_role("heading", name="Your device is signed in")
                     ).to_be_visible()

        token = await poll()
        jwks = (await oauth.request("GET", metadata["jwks_uri"], withhold_token=True)).json()
    id_token = token["id_token"]
    key = next(k for k in jwks["keys"]
               if k["kid"] == pyjwt.get_unverified_header(id_token)["kid"])
    claims = pyjwt.decode(id_token, pyjwt.PyJWK(key).key, algorithms=["RS256"],
                          audience=tv.client_id, issuer=idp)
    assert claims["sub"] == user_id
    assert token["scope"] == "openid profile"
