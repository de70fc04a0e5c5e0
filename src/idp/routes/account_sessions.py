"""Where you're signed in, and the security timeline (issue 12 item 8): the account
center's list of the customer's browser sessions, ending one or all the others (each POST
with its CSRF token; apps are told by back-channel logout), and every security event of the
account, a page at a time. Only the signed-in customer sees their own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp import errors
from idp.services.accounts import center, signed_in, timeline
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, see_other

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)


@router.get("/sessions")
async def sessions_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                        ended: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    # The query carries a count to show, never words.
    count = int(ended) if ended and ended.isdigit() and len(ended) < 4 else None
    return account_page(request, cookies, "account_sessions.html", {
        "sessions": await signed_in.live_sessions(ctx, found[0].id,
                                                  cookies.session_cookie(request)),
        "ended": count}, "sessions")


@router.post("/sessions/end-others")
async def end_others(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    _, info = await center.current_user(ctx, cookies.session_cookie(request))
    await account_form(request, cookies, "sessions")
    ended = await signed_in.end_others(ctx, info)
    return see_other(f"/account/sessions?ended={ended}")


@router.post("/sessions/{sid}/end")
async def end_one(sid: str, request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    _, info = await center.current_user(ctx, cookies.session_cookie(request))
    await account_form(request, cookies, "sessions")
    if not 0 < len(sid) <= 64:
        raise errors.InvalidRequest(signed_in.NOT_YOURS, redirectable=False)
    await signed_in.end_one(ctx, info, sid)
    return see_other("/account/sessions?ended=1")


@router.get("/activity")
async def activity_page(request: Request, ctx: CtxDep, cookies: CookiesDep,
                        page: str | None = None) -> Response:
    found = await center.signed_in(ctx, cookies.session_cookie(request))
    if found is None:
        return see_other("/account/login")
    return account_page(request, cookies, "account_activity.html", {
        "timeline": await timeline.timeline(ctx, found[0].id, timeline.page_number(page))})
