"""The customer's language on every page (issue 15 items 1-3).

Each page request gets one language, in this order: the `ui_locales` of the authorization
request the page belongs to (OIDC Core §3.1.2.1), the language the customer picked (this
browser's cookie, else the signed-in account's), the browser's `Accept-Language` (RFC 9110
§12.5.4), the configured default. Pages carry it as `<html lang dir>` and `Content-Language`;
`gettext` anywhere below answers in it (idp.locales). The switcher on every page is a link
to /language, which remembers the pick and returns to the same page of the same flow.

Protocol answers stay English on the wire (`error_description` is for developers): the hot
endpoints never come here, and JSON answers get no Content-Language.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp import locales
from idp.crypto.handles import digest
from idp.locales import N_, gettext, ngettext
from idp.services.accounts.language import account_language, requested_languages
from idp.settings import Settings
from idp.web.hot import HOT_PATHS

# Routes mark and translate what they show customers with these (services: idp.locales).
__all__ = ["N_", "LanguageNegotiation", "error_summary", "follow_flow_language", "gettext",
           "ngettext", "page_language", "safe_next", "shown_description"]
log = logging.getLogger("idp.web")

LANGUAGE_PATH = "/language"
COOKIE_MAX_AGE = 400 * 86_400  # the longest browsers keep a cookie (RFC 6265bis §5.5)
# Never pages: answered without choosing a language.
_NOT_PAGES = ("/static/", "/theme/", "/admin/", "/metrics", "/health", "/docs",
              "/openapi.json", "/.well-known/", "/par", "/device_authorization", "/grants",
              "/register", "/profile/")
_MAX_NEXT = 2048
# What the database said, remembered per process for a while (every page of a sign-in, and
# every page of a signed-in browser without a language cookie, would otherwise read it again).
# An account's language set from another browser reaches this one within REMEMBER_SECONDS.
REMEMBER_SECONDS = 300
_MAX_REMEMBERED = 10_000


class _Remembered:
    """A small time-bounded memo: key -> (time read, value)."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> tuple[bool, Any]:
        found = self._entries.get(key)
        if found is None or time.monotonic() - found[0] > REMEMBER_SECONDS:
            return False, None
        return True, found[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._entries) >= _MAX_REMEMBERED:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)


def language_cookie_name(settings: Settings) -> str:
    # The __Host- prefix needs Secure, which browsers honour only over https.
    return "__Host-idp_lang" if settings.secure_cookies else "idp_lang"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


class LanguageNegotiation:
    """Pure ASGI (no `BaseHTTPMiddleware`): chooses the language of each page request and
    names it in `Content-Language`. Reads the database only for an interaction's page (its
    `ui_locales`) and for a signed-in browser that has no language cookie (the account's)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.languages = settings.languages
        self.default = settings.default_locale
        self.cookie = language_cookie_name(settings)
        self.session_cookie = settings.session_cookie_name
        self.accounts = _Remembered()  # session cookie digest -> the account's language
        self.requests = _Remembered()  # (interaction, language cookie) -> its ui_locales
        self.set_cookie_attributes = (
            f"Max-Age={COOKIE_MAX_AGE}; Path=/; HttpOnly; SameSite=lax"
            + ("; Secure" if settings.secure_cookies else ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path or path in HOT_PATHS or path.startswith(_NOT_PAGES):
            await self.app(scope, receive, send)
            return
        locale, from_account = await self.choose(scope)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    headers.append((b"content-language",
                                    locales.current_locale().encode("ascii")))
                if from_account:
                    # Remembered in this browser: the account is not read again.
                    headers.append((b"set-cookie", f"{self.cookie}={locale}; "
                                    f"{self.set_cookie_attributes}".encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        with locales.using_locale(locale):
            await self.app(scope, receive, send_with_language)

    async def choose(self, scope: Scope) -> tuple[str, bool]:
        """The language, and whether it came from the account (to remember in the browser)."""
        cookies = cookie_parser(_header(scope, b"cookie"))
        picked = cookies.get(self.cookie)
        requested = await self._requested(scope, picked)
        found = locales.negotiate(requested, self.languages)
        if found:
            return found, False
        if picked in self.languages:
            return str(picked), False
        session = cookies.get(self.session_cookie)
        if session and len(session) <= 64:
            key = digest(session)
            known, account = self.accounts.get(key)
            if not known:
                account = await self._read(account_language, scope, session)
                self.accounts.put(key, account)
            if account in self.languages:
                return str(account), True
        preferred = locales.parse_accept_language(_header(scope, b"accept-language"))
        return locales.negotiate(preferred, self.languages) or self.default, False

    async def _requested(self, scope: Scope, picked: str | None) -> list[str]:
        path = scope["path"]
        if path == "/authorize":
            query = scope.get("query_string", b"").decode("latin-1")
            return [tag for name, value in parse_qsl(query) if name == "ui_locales"
                    for tag in value.split()]
        if path.startswith("/interaction/"):
            # Keyed with the language cookie too: the switcher changes an interaction's
            # ui_locales and the cookie together, so a switch is always read afresh.
            key = (path.split("/")[2], picked)
            known, found = self.requests.get(key)
            if not known:
                found = await self._read(requested_languages, scope, key[0])
                if isinstance(found, list):
                    self.requests.put(key, found)
            return found if isinstance(found, list) else []
        return []

    async def _read(self, reader: Any, scope: Scope, value: str) -> Any:
        try:
            return await reader(scope["app"].state.ctx, value)
        except (OperationalError, InterfaceError, OSError) as exc:
            # The page itself answers the outage (503); its language is not worth failing on.
            log.warning("language not read: %s", type(exc).__name__)
            return None


def safe_next(value: str) -> str:
    """A path on this site to return to (never another origin: no open redirect)."""
    if (not value or len(value) > _MAX_NEXT or not value.startswith("/")
            or value.startswith("//") or "\\" in value
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)):
        return "/account"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/account"
    return value


def page_language(request: Request) -> dict[str, Any]:
    """What base.html needs: `lang`, `dir`, and the switcher's languages and the page to
    return to: this address (a page shown in answer to a form post returns to its address,
    which shows it again; a template may name another, `language_next`)."""
    locale = locales.current_locale()
    here = request.url.path + (
        f"?{request.url.query}" if request.url.query and request.method == "GET" else "")
    settings: Settings = request.app.state.settings
    return {
        "lang": locale,
        "dir": locales.direction(locale),
        "language_path": LANGUAGE_PATH,
        "language_here": safe_next(here),
        "languages": [{"tag": tag, "name": locales.native_name(tag),
                       "dir": locales.direction(tag), "current": tag == locale}
                      for tag in settings.languages],
    }


# The error page's plain words per error code (the RFC code itself is shown apart, for the
# app's support); anything else gets the last.
ERROR_SUMMARIES = {
    "invalid_request": N_("The request was not valid."),
    "invalid_client": N_("The app that sent you here is not known to us."),
    "unauthorized_client": N_("This app may not sign you in this way."),
    "unsupported_response_type": N_("The app asked to sign you in in a way we do not "
                                    "support."),
    "invalid_scope": N_("The app asked for access that it may not have."),
    "access_denied": N_("The request was refused."),
    "server_error": N_("Something went wrong on our side. Try again in a moment."),
    "temporarily_unavailable": N_("The service is busy. Wait a moment, then try again."),
    "login_required": N_("You need to sign in again."),
    "interaction_required": N_("The app needs you to sign in or answer a question first. "
                               "Return to the app and try again."),
    "consent_required": N_("The app needs your consent first. Return to the app and try "
                           "again."),
    "account_selection_required": N_("The app needs you to choose an account first. Return "
                                     "to the app and try again."),
    "invalid_request_uri": N_("This sign-in request has expired. Return to the app and start "
                              "again."),
    "request_not_supported": N_("The app sent a kind of request that we do not support."),
    "request_uri_not_supported": N_("The app sent a kind of request that we do not "
                                    "support."),
    "invalid_grant": N_("This link or code has expired or was already used."),
    "expired_token": N_("This code has expired. Start again on your device."),
    "invalid_token": N_("Your sign-in has expired. Sign in again."),
    "insufficient_scope": N_("You may not do this."),
}
OTHER_ERROR = N_("The request could not be completed.")


def error_summary(code: str) -> str:
    return gettext(ERROR_SUMMARIES.get(code, OTHER_ERROR))


def shown_description(description: str | None) -> str | None:
    """An error's description on a page: in the source language as it is; in another, its
    translation when it is one written for customers (marked N_), and nothing otherwise (a
    developer's English detail; the page's summary and error code say enough)."""
    if description is None:
        return None
    locale = locales.current_locale()
    return gettext(description) if locales.is_translated(description, locale) else None


async def follow_flow_language(request: Request, interaction_id: str | None) -> None:
    """A page of a sign-in flow reached on another path (an upstream's callback): in the
    language its authorization request asked for, as on the flow's own pages."""
    if not interaction_id:
        return
    settings: Settings = request.app.state.settings
    found = locales.negotiate(
        await requested_languages(request.app.state.ctx, interaction_id), settings.languages)
    if found:
        locales.set_locale(found)
