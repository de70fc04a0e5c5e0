"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2), GET and POST."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response

from idp.protocol.authorize import single_values
from idp.services.signin.authorization import Outcome, begin_authorization
from idp.services.signin.pushed import push
from idp.services.signin.respond import AuthorizationResponse
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE, deliver, with_dpop_nonce

router = APIRouter(tags=["OpenID Connect"])


def respond(request: Request, outcome: Outcome) -> Response:
    if isinstance(outcome, AuthorizationResponse):
        return deliver(request, outcome)
    return RedirectResponse(
        f"/interaction/{outcome.interaction_id}/{outcome.step.value}", status_code=303,
        headers=NO_STORE,
    )


AUTHORIZE_PARAMETERS = [
    {"name": name, "in": "query", "required": name in ("client_id", "redirect_uri",
                                                       "response_type", "scope"),
     "schema": {"type": "string"}}
    for name in ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                 "code_challenge", "code_challenge_method", "response_mode", "prompt",
                 "max_age", "login_hint", "id_token_hint", "ui_locales", "acr_values", "claims",
                 "dpop_jkt", "request_uri")
]
RESPONSES: dict[int | str, dict[str, str]] = {
    303: {"description": "To the login or consent page, or back to the client"},
    400: {"description": "Error page: the client or redirect_uri could not be verified"},
}


@router.get("/authorize", summary="Authorization endpoint", operation_id="authorize_get",
            response_class=Response, responses=RESPONSES,
            openapi_extra={"parameters": AUTHORIZE_PARAMETERS})
@router.post("/authorize", summary="Authorization endpoint (form)",
             operation_id="authorize_post", response_class=Response, responses=RESPONSES)
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


@router.post(
    "/par", summary="Pushed authorization request (RFC 9126)", status_code=201,
    description="The authorization request's parameters, pushed over the back channel with "
                "the client's authentication (as at /token). The answer's `request_uri` is "
                "good for 60 s and one use: send the browser to `/authorize?client_id=...&"
                "request_uri=...`. Errors are the authorization endpoint's, as JSON. With a "
                "`DPoP` proof header (RFC 9449 §10.1) the code is bound to the proof's key, "
                "as by `dpop_jkt`.",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["response_type", "redirect_uri", "scope"],
            "properties": {p["name"]: {"type": "string"} for p in AUTHORIZE_PARAMETERS
                           if p["name"] != "request_uri"}}}}}},
    responses={201: {"description": "`request_uri` and `expires_in`"},
               400: {"description": "The authorization request is invalid (RFC 6749 §5.2 "
                                    "vocabulary)"},
               401: {"description": "invalid_client"}})
async def pushed_authorization_request(request: Request, ctx: CtxDep) -> JSONResponse:
    values, repeated = single_values(await read_form(request))
    proofs = request.headers.getlist("dpop")
    request_uri, expires_in = await push(ctx, values, repeated,
                                         request.headers.get("authorization"), proofs)
    return JSONResponse({"request_uri": request_uri, "expires_in": expires_in},
                        status_code=201, headers=with_dpop_nonce(ctx, NO_STORE, proofs))
