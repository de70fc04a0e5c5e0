"""Upstream sign-in: start, and one callback path per upstream (federation.md §9 req 2)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from idp.routes.authorize import respond
from idp.routes.interaction import render_page
from idp.services.accounts.linking import finish_round_trip
from idp.services.signin.authorization import resume_authorization
from idp.services.signin.second_factor import SecondFactorRequired
from idp.services.signin.upstream_login import finish_login, start_login
from idp.services.upstream.state import LOGIN, claim_callback_state
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.i18n import follow_flow_language
from idp.web.responses import NO_STORE, auto_submit_page

router = APIRouter(prefix="/federation/{alias}", tags=["Pages"], include_in_schema=False)


@router.post("/start")
async def start(alias: str, request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    form = dict(await read_form(request))
    interaction_id = form.get("interaction", "")
    browser_id = cookies.check_form(request, f"federation:{interaction_id}",
                                    form.get("csrf_token"))
    url = await start_login(ctx, alias, interaction_id, browser_id)
    # RFC 9700 §4.12: 303 after a POST.
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


@router.get("/callback")
async def callback(alias: str, request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    return await _finish(alias, request, ctx, cookies, list(request.query_params.multi_items()))


@router.post("/callback")
async def form_post_callback(alias: str, request: Request, ctx: CtxDep, cookies: CookiesDep
                             ) -> Response:
    """Apple answers with response_mode=form_post: a cross-site POST, which SameSite=Lax
    cookies do not accompany. Without our browser cookie, re-navigate with a top-level GET
    from our own origin, which carries it (requirement 5); the state stays single-use."""
    params = await read_form(request)
    if cookies.browser_id(request) is None:
        return auto_submit_page(request, "get", f"/federation/{alias}/callback", params)
    return await _finish(alias, request, ctx, cookies, params)


async def _finish(alias: str, request: Request, ctx: CtxDep, cookies: CookiesDep,
                  params: list[tuple[str, str]]) -> Response:
    browser_id = cookies.browser_id(request)
    # The account center's round trips (connect, re-authenticate) come back on this path too:
    # the state, used up here once, says which one this is.
    state = await claim_callback_state(ctx, params)
    if state.purpose != LOGIN:
        round_trip = await finish_round_trip(ctx, state, alias, params, browser_id,
                                             cookies.session_cookie(request))
        back = RedirectResponse(round_trip.location, status_code=303, headers=NO_STORE)
        if round_trip.session_cookie is not None:
            cookies.set_session(back, round_trip.session_cookie)
        return back
    await follow_flow_language(request, state.interaction_id)
    try:
        result = await finish_login(ctx, state, alias, params, browser_id,
                                    cookies.session_cookie(request))
    except SecondFactorRequired as needed:  # the account's second factor, on its own page
        return RedirectResponse(needed.location, status_code=303, headers=NO_STORE)
    if result.session_cookie is None or browser_id is None:
        return await render_page(request, ctx, cookies, result.interaction_id, "login",
                                 result.message, link_handle=result.link_handle)
    outcome = await resume_authorization(ctx, result.interaction_id, browser_id,
                                         result.session_cookie)
    response = respond(request, outcome)
    cookies.set_session(response, result.session_cookie)
    return response
