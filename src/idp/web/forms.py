"""Account-center forms: every POST carries a CSRF token bound to the browser and to the
form's purpose, and every successful POST answers 303 (RFC 9700 §4.12)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from idp import errors
from idp.web.browser import BrowserCookies
from idp.web.deps import read_form
from idp.web.responses import NO_STORE, page


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=NO_STORE)


async def account_form(request: Request, cookies: BrowserCookies, purpose: str
                       ) -> dict[str, Any]:
    """The form's fields (each a list of values), once the post comes from our own origin and
    its CSRF token for `account:{purpose}` checks out (`BrowserCookies.check_form`)."""
    form = await read_form(request)
    if any("\x00" in k or "\x00" in v for k, v in form):
        # As for the query string (web/security.py): never a database error later.
        raise errors.InvalidRequest("The request contains a NUL character",
                                    redirectable=False)
    values: dict[str, Any] = {}
    for name, value in form:
        values.setdefault(name, []).append(value)
    cookies.check_form(request, f"account:{purpose}", (values.get("csrf_token") or [None])[0])
    return values


def first(values: dict[str, Any], name: str) -> str:
    return str((values.get(name) or [""])[0])


def account_page(request: Request, cookies: BrowserCookies, template: str,
                 context: dict[str, Any], *csrf_purposes: str, status_code: int = 200
                 ) -> HTMLResponse:
    """An account-center page whose forms carry CSRF tokens bound to this browser: the first
    purpose's as `csrf_token`, each as `csrf[purpose]`. A browser seen for the first time
    gets its cookie with the page, so the tokens it was given can be checked."""
    browser_id, is_new = cookies.ensure_browser_id(request)
    tokens = {purpose: cookies.csrf_token(browser_id, f"account:{purpose}")
              for purpose in csrf_purposes}
    if csrf_purposes:
        context = {**context, "csrf_token": tokens[csrf_purposes[0]], "csrf": tokens}
    response = page(request, template, context, status_code=status_code)
    if is_new:
        cookies.set_browser_id(response, browser_id)
    return response
