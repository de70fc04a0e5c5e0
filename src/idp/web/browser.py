"""Browser state: the browser-binding cookie, the session cookie and CSRF tokens.

The browser cookie is a random id that binds interactions and CSRF tokens to one browser. CSRF
tokens are MACs over that id and the form's purpose (RFC 6749 §10.12), so a token lifted from one
browser is useless in another and nothing needs storing.

Every state-changing form post passes `check_form`: a second wall in front of the token, the
browser's own word on where the post comes from (Fetch Metadata `Sec-Fetch-Site`, else the
`Origin` header) must be our origin. Protocol endpoints that other sites post to by design
(/authorize, /logout, /token, Apple's form_post callback) are not forms of ours and never
come here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from idp import errors
from idp.crypto.handles import new_handle
from idp.crypto.keys import derive_key
from idp.locales import N_
from idp.settings import Settings

# Descriptions of the 403 page (translated there: idp.web.i18n.shown_description).
EXPIRED = N_("The form has expired. Go back and try again.")
CROSS_SITE = N_("The form was sent from another site. Go back and try again.")
_SAFE_METHODS = frozenset({"GET", "HEAD"})


def origin_of(url: str) -> str:
    """The ASCII serialisation of the URL's origin (RFC 6454 §6.2): scheme://host[:port],
    the port only when it is not the scheme's default, as browsers send it in `Origin`."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"


def from_own_origin(request: Request, origin: str) -> bool:
    """Whether the browser says the request comes from `origin`; True when it says nothing.

    `Sec-Fetch-Site` (Fetch Metadata) decides when present: `same-origin` passes; `same-site`
    and `cross-site` fail; `none` (typed or bookmarked) is a navigation, which a POST never
    is. It decides before `Origin`, which a page under a `no-referrer` policy (a customized
    template, a privacy extension) sends as `null` even for our own form posts. Our pages
    send `Referrer-Policy: same-origin`, so a browser without Fetch Metadata sends our real
    origin. Without `Sec-Fetch-Site`, `Origin` must be our origin, and `null` (a sandboxed
    or privacy-stripped context) fails. Without either, the CSRF token alone decides.
    """
    site = request.headers.get("sec-fetch-site")
    sent_origin = request.headers.get("origin")
    if site is not None:
        if site == "none":
            return request.method in _SAFE_METHODS
        # A named origin other than ours contradicts `same-origin`: no browser sends that.
        return site == "same-origin" and sent_origin in (None, "null", origin)
    if sent_origin is not None:
        return sent_origin == origin
    return True


class BrowserCookies:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._csrf_key = derive_key(settings.resolved_key_secret(), "csrf")
        self.origin = origin_of(settings.issuer)

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

    def device_cookie_header(self, value: str, max_age: int) -> bytes:
        """The Set-Cookie header of a device cookie (idp.services.signin.devices), for the
        middleware that writes it; the same attributes as every cookie of ours (`_set`)."""
        carrier = Response()
        self._set(carrier, self.settings.device_cookie_name, value, max_age)
        return carrier.raw_headers[-1][1]

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

    def check_form(self, request: Request, purpose: str, token: str | None) -> str:
        """The browser id behind a state-changing form post that comes from our own origin
        and carries this browser's CSRF token for `purpose`; otherwise `ForgedForm` (403)."""
        if not from_own_origin(request, self.origin):
            raise errors.ForgedForm(CROSS_SITE)
        browser_id = self.browser_id(request)
        if browser_id is None or not self.csrf_valid(browser_id, purpose, token):
            raise errors.ForgedForm(EXPIRED)
        return browser_id


async def get_cookies(request: Request) -> BrowserCookies:
    cookies: BrowserCookies = request.app.state.cookies
    return cookies


CookiesDep = Annotated[BrowserCookies, Depends(get_cookies)]
