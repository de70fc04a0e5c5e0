"""Browser state: the browser-binding cookie, the session cookie and CSRF tokens.

The browser cookie is a random id that binds interactions and CSRF tokens to one browser. CSRF
tokens are MACs over that id and the form's purpose (RFC 6749 §10.12), so a token lifted from one
browser is useless in another and nothing needs storing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from idp.crypto.handles import new_handle
from idp.crypto.keys import derive_key
from idp.settings import Settings


class BrowserCookies:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._csrf_key = derive_key(settings.resolved_key_secret(), "csrf")

    def browser_id(self, request: Request) -> str | None:
        value = request.cookies.get(self.settings.browser_cookie_name)
        return value if value and 20 <= len(value) <= 64 else None

    def ensure_browser_id(self, request: Request) -> tuple[str, bool]:
        """The browser id, and whether it is new (and so must be set on the response)."""
        existing = self.browser_id(request)
        return (existing, False) if existing else (new_handle(24), True)

    def session_cookie(self, request: Request) -> str | None:
        value = request.cookies.get(self.settings.session_cookie_name)
        return value if value and len(value) <= 64 else None

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        # ATO-14: __Host- prefix (via the name), Secure, HttpOnly, SameSite=Lax, Path=/.
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=self.settings.secure_cookies,
            httponly=True, samesite="lax",
        )

    def set_browser_id(self, response: Response, value: str) -> None:
        self._set(response, self.settings.browser_cookie_name, value, 400 * 86_400)

    def set_session(self, response: Response, value: str) -> None:
        self._set(response, self.settings.session_cookie_name, value, self.settings.session_ttl)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(
            self.settings.session_cookie_name, path="/", secure=self.settings.secure_cookies,
            httponly=True, samesite="lax",
        )

    def csrf_token(self, browser_id: str, purpose: str) -> str:
        mac = hmac.new(self._csrf_key, f"{browser_id}|{purpose}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def csrf_valid(self, browser_id: str | None, purpose: str, token: str | None) -> bool:
        if not browser_id or not token:
            return False
        return hmac.compare_digest(self.csrf_token(browser_id, purpose), token)


async def get_cookies(request: Request) -> BrowserCookies:
    cookies: BrowserCookies = request.app.state.cookies
    return cookies


CookiesDep = Annotated[BrowserCookies, Depends(get_cookies)]
