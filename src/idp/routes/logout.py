"""The end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from idp.services.signin.logout import LOGOUT_PARAMETERS, LogoutRequest, decide_logout, log_out
from idp.web.browser import BrowserCookies, CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE, page

router = APIRouter(tags=["OpenID Connect"])
LOGOUT_PURPOSE = "logout"

PARAMETERS = [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
              for n in LOGOUT_PARAMETERS]


def _finish(request: Request, cookies: BrowserCookies, logout: LogoutRequest) -> Response:
    response: Response
    if logout.redirect_to is not None:
        response = RedirectResponse(logout.redirect_to, status_code=303, headers=NO_STORE)
    else:
        name = logout.client.name if logout.client else None
        response = page(request, "logged_out.html", {"client_name": name})
    cookies.clear_session(response)
    return response


@router.get("/logout", summary="End session endpoint", operation_id="logout_get",
            response_class=Response, openapi_extra={"parameters": PARAMETERS},
            responses={303: {"description": "To the post_logout_redirect_uri"},
                       200: {"description": "Confirmation or signed-out page"}})
@router.post("/logout", summary="End session endpoint (form)", operation_id="logout_post",
             response_class=Response)
async def end_session_endpoint(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    if request.method == "POST":
        params = await read_form(request)
    else:
        params = list(request.query_params.multi_items())
    session_cookie = cookies.session_cookie(request)
    decision = await decide_logout(ctx, params, session_cookie)
    if decision.confirm:
        browser_id, is_new = cookies.ensure_browser_id(request)
        response = page(request, "logout_confirm.html", {
            "client_name": decision.request.client.name if decision.request.client else None,
            "params": decision.request.params,
            "csrf_token": cookies.csrf_token(browser_id, LOGOUT_PURPOSE),
        })
        if is_new:
            cookies.set_browser_id(response, browser_id)
        return response
    await log_out(ctx, session_cookie)
    return _finish(request, cookies, decision.request)


@router.post("/logout/confirm", include_in_schema=False)
async def confirm_logout(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    form = await read_form(request)
    values = dict(form)
    cookies.check_form(request, LOGOUT_PURPOSE, values.get("csrf_token"))
    params = [(k, v) for k, v in form if k in LOGOUT_PARAMETERS]
    session_cookie = cookies.session_cookie(request)
    decision = await decide_logout(ctx, params, session_cookie)
    if values.get("decision") != "logout":
        # The customer stays signed in; no redirect back to an app that asked for a logout.
        return page(request, "logged_out.html", {"client_name": None, "stayed": True})
    await log_out(ctx, session_cookie)
    return _finish(request, cookies, decision.request)
