"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET and POST."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from idp.services.authorization import AuthorizationResponse, Outcome, begin_authorization
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE, deliver

router = APIRouter(tags=["OpenID Connect"])


def respond(request: Request, outcome: Outcome) -> Response:
    if isinstance(outcome, AuthorizationResponse):
        return deliver(request, outcome)
    return RedirectResponse(
        f"/interaction/{outcome.interaction_id}/{outcome.step.value}", status_code=303,
        headers=NO_STORE,
    )


@router.api_route("/authorize", methods=["GET", "POST"], summary="Authorization endpoint",
                  response_class=Response, responses={303: {"description": "Redirect"}})
async def authorize(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    if request.method == "POST":
        params = await read_form(request)
    else:
        params = list(request.query_params.multi_items())
    browser_id, is_new = cookies.ensure_browser_id(request)
    outcome = await begin_authorization(ctx, params, browser_id, cookies.session_cookie(request))
    response = respond(request, outcome)
    if is_new:
        cookies.set_browser_id(response, browser_id)
    return response
