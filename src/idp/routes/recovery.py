"""Password reset pages (issue 12 item 3): ask for a link, follow it, choose a password."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.services.accounts import recovery
from idp.services.signin.interaction import LoginFailed
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first

router = APIRouter(prefix="/account", tags=["Account center"], include_in_schema=False)


@router.get("/forgot")
async def forgot_page(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    return account_page(request, cookies, "account_forgot.html", {}, "forgot")


@router.post("/forgot")
async def forgot(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "forgot")
    await recovery.request_reset(ctx, first(values, "email"))
    # The same page whether or not an account has the address.
    return account_page(request, cookies, "account_forgot.html", {
        "sent": True, "minutes": ctx.settings.password_reset_ttl // 60})


def _reset_page(request: Request, ctx: CtxDep, cookies: CookiesDep, token: str,
                status_code: int = 200, **context: object) -> Response:
    return account_page(request, cookies, "account_reset.html", {
        "token": token, "min_length": ctx.settings.password_min_length, **context},
        "reset", status_code=status_code)


@router.get("/reset")
async def reset_page(request: Request, ctx: CtxDep, cookies: CookiesDep, token: str = ""
                     ) -> Response:
    if not await recovery.link_is_live(ctx, token):
        return _reset_page(request, ctx, cookies, "", 400, invalid=True)
    return _reset_page(request, ctx, cookies, token)


@router.post("/reset")
async def reset(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "reset")
    token = first(values, "token")
    try:
        await recovery.reset_password(ctx, token, first(values, "new_password"))
    except LoginFailed as refused:
        return _reset_page(request, ctx, cookies, token, 400, message=refused.message)
    except recovery.LinkInvalid:
        return _reset_page(request, ctx, cookies, "", 400, invalid=True)
    response = _reset_page(request, ctx, cookies, "", done=True)
    # Signed out everywhere, this browser included.
    cookies.clear_session(response)
    return response
