"""The registration link's page (issue 12 item 2): choose a password for a new account, or,
for an address that has one, sign in to the app the registration began from."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp.routes.authorize import respond
from idp.services.accounts import signup
from idp.services.signin.interaction import LoginFailed
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep
from idp.web.forms import account_form, account_page, first, see_other

router = APIRouter(prefix="/signup", tags=["Account center"], include_in_schema=False)


def _page(request: Request, ctx: CtxDep, cookies: CookiesDep, status_code: int = 200,
          **context: object) -> Response:
    return account_page(request, cookies, "signup.html", {
        "min_length": ctx.settings.password_min_length, "minutes": ctx.settings.signup_ttl // 60,
        **context}, "signup", status_code=status_code)


@router.get("")
async def signup_page(request: Request, ctx: CtxDep, cookies: CookiesDep, token: str = ""
                      ) -> Response:
    try:
        link = await signup.read_link(ctx, token)
        if link.purpose == signup.SIGNUP_SIGNIN:
            browser_id, is_new = cookies.ensure_browser_id(request)
            outcome = await signup.sign_in_from_link(ctx, token, browser_id,
                                                     cookies.session_cookie(request))
            response = respond(request, outcome)
            if is_new:
                cookies.set_browser_id(response, browser_id)
            return response
    except signup.LinkInvalid:
        return _page(request, ctx, cookies, 400, invalid=True)
    return _page(request, ctx, cookies, token=token, email=link.email)


@router.post("")
async def complete(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "signup")
    token = first(values, "token")
    browser_id, _ = cookies.ensure_browser_id(request)
    try:
        signed_in = await signup.complete_signup(ctx, token, first(values, "password"),
                                                 browser_id, cookies.session_cookie(request))
    except LoginFailed as refused:
        link = await signup.read_link(ctx, token)
        return _page(request, ctx, cookies, 400, token=token, email=link.email,
                     message=refused.message)
    except signup.LinkInvalid:
        return _page(request, ctx, cookies, 400, invalid=True)
    except signup.AddressTaken:
        return _page(request, ctx, cookies, 409, taken=True)
    response = (respond(request, signed_in.outcome) if signed_in.outcome is not None
                else see_other("/account"))
    cookies.set_session(response, signed_in.cookie)
    return response
