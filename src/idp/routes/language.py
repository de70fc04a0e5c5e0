"""The language switcher (issue 15 item 2): a link on every page, so it works without
JavaScript and inside any form's page."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from idp.services.accounts.language import pick_language
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.i18n import COOKIE_MAX_AGE, LANGUAGE_PATH, language_cookie_name, safe_next
from idp.web.responses import NO_STORE

router = APIRouter(tags=["Pages"], include_in_schema=False)


def _from_our_pages(request: Request, origin: str) -> bool:
    """A link followed on one of our pages (Fetch Metadata, else the Referer our pages send
    to our own origin): only then may the account's language change, never from a link
    another site planted."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    referer = urlsplit(request.headers.get("referer", ""))
    return f"{referer.scheme}://{referer.netloc}" == origin


@router.get(LANGUAGE_PATH)
async def switch_language(request: Request, ctx: CtxDep, cookies: CookiesDep,
                          lang: str = "", next: str = "/account") -> RedirectResponse:
    """Remember the language picked (this browser; the account when signed in; the sign-in
    flow the page belongs to) and return to the page, in it. An unknown language changes
    nothing."""
    target = safe_next(next)
    response = RedirectResponse(target, status_code=303, headers=NO_STORE)
    if lang not in ctx.settings.languages:
        return response
    path = urlsplit(target).path
    interaction_id = path.split("/")[2] if path.startswith("/interaction/") else None
    await pick_language(ctx, lang, session_cookie=cookies.session_cookie(request),
                        browser_id=cookies.browser_id(request), interaction_id=interaction_id,
                        on_account=_from_our_pages(request, cookies.origin))
    response.set_cookie(language_cookie_name(ctx.settings), lang, max_age=COOKIE_MAX_AGE,
                        path="/", secure=ctx.settings.secure_cookies, httponly=True,
                        samesite="lax")
    return response
