"""The customer's CCPA/CPRA choices in the account center (issue 16 item 5):
/account/privacy/choices shows "do not sell or share my personal information" and "limit the
use of my sensitive personal information", each with how and when it was set, and changes
them (a POST with its CSRF token). `honour_gpc` runs before every account-center route: a
signed-in request carrying `Sec-GPC: 1` opts the account out of sale and sharing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp import errors
from idp.protocol.privacy import SET_BY_ACCOUNT
from idp.routes.interaction import sends_gpc
from idp.services.accounts import center
from idp.services.consent import privacy_choices
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)
PAGE = "/account/privacy/choices"
# The public page's way in (/privacy/do-not-sell): the page leads with that choice.
VIA_DO_NOT_SELL = "do-not-sell"
ANSWERS = {"on": True, "off": False}


async def honour_gpc(request: Request, ctx: CtxDep, cookies: CookiesDep) -> None:
    """Global Privacy Control (GPC §3; Cal. Code Regs. tit. 11 §7025): the signed-in
    customer's browser asks not to sell or share. Free unless the header is there."""
    if sends_gpc(request):
        cookie = cookies.session_cookie(request)
        if cookie:
            await privacy_choices.honour_gpc(ctx, cookie)


@router.get("/privacy/choices")
async def choices_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                       via: str | None = None, change: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    view, withheld = await privacy_choices.choices_page(ctx, found[0].id)
    # The query picks among our own words (a change id, a way in); it never carries words.
    return account_page(request, cookies, "account_privacy_choices.html", {
        "choices": view, "withheld": withheld, "gpc": sends_gpc(request),
        "via_do_not_sell": via == VIA_DO_NOT_SELL,
        "status": await center.change_status(ctx, change)
        if change and len(change) < 64 else None}, "privacy", "logout")


@router.post("/privacy/choices")
async def change_choices(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    user, _ = await center.current_user(ctx, cookies.session_cookie(request))
    values = await account_form(request, cookies, "privacy")
    answers = {}
    for name in ("do_not_sell_or_share", "limit_sensitive_use"):
        answer = first(values, name)
        if answer and answer not in ANSWERS:
            raise errors.InvalidRequest("Choose on or off", redirectable=False)
        answers[name] = ANSWERS.get(answer)
    changed = await privacy_choices.set_choices(
        ctx, user.id, do_not_sell_or_share=answers["do_not_sell_or_share"],
        limit_sensitive_use=answers["limit_sensitive_use"], set_by=SET_BY_ACCOUNT,
        gpc=sends_gpc(request))
    if changed.change_id is None:
        return see_other(f"{PAGE}?change=none")
    return see_other(f"{PAGE}?change={changed.change_id}")
