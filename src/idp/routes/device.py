"""The device authorization grant (RFC 8628): the device's endpoint, and the pages where the
customer enters and confirms the device's code."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from idp import errors
from idp.protocol.authorize import single_values
from idp.protocol.device import normalize_user_code
from idp.routes.authorize import respond
from idp.services.devices import verification
from idp.services.devices.authorization import start_device_authorization, verification_uri
from idp.web.browser import CookiesDep
from idp.web.deps import CtxDep, read_form
from idp.web.forms import account_form, account_page, first, see_other
from idp.web.i18n import gettext
from idp.web.responses import NO_STORE, page

router = APIRouter(tags=["OAuth 2.0"])


@router.post(
    "/device_authorization", summary="Device authorization endpoint (RFC 8628)",
    description="A device without a browser asks for a code here, authenticating as at "
                "/token (public clients send `client_id`). The customer enters `user_code` "
                "at `verification_uri` (or opens `verification_uri_complete`, e.g. from a QR "
                "code: `/device/qr.svg?user_code=...`); meanwhile the device polls /token "
                "with `grant_type=urn:ietf:params:oauth:grant-type:device_code` every "
                "`interval` seconds. The client must be registered with that grant type.",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["client_id", "scope"],
            "properties": {name: {"type": "string"} for name in (
                "client_id", "scope", "client_secret")}}}}}},
    responses={200: {"description": "`device_code`, `user_code`, `verification_uri`, "
                                    "`verification_uri_complete`, `expires_in`, `interval`"},
               400: {"description": "invalid_request, invalid_scope, unauthorized_client"},
               401: {"description": "invalid_client"}})
async def device_authorization(request: Request, ctx: CtxDep) -> JSONResponse:
    values, repeated = single_values(await read_form(request))
    body = await start_device_authorization(ctx, values, repeated,
                                            request.headers.get("authorization"))
    return JSONResponse(body, headers=NO_STORE)


def _shown(refused: errors.InvalidRequest) -> str | None:
    """The refusal in the customer's language (its description is a catalog text)."""
    return gettext(refused.description) if refused.description else None


def _entry_page(request: Request, cookies: CookiesDep, user_code: str = "",
                message: str | None = None, status_code: int = 200) -> Response:
    return account_page(request, cookies, "device.html",
                        {"user_code": user_code[:32], "message": message}, "device",
                        status_code=status_code)


@router.get("/device", include_in_schema=False)
async def device_page(request: Request, cookies: CookiesDep, user_code: str = "") -> Response:
    # verification_uri_complete fills the code in; the customer still confirms it (§5.4).
    return _entry_page(request, cookies, user_code)


@router.post("/device", include_in_schema=False)
async def enter_code(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "device")
    entered = first(values, "user_code")
    try:
        device = await verification.find_device_request(ctx, entered)
    except errors.InvalidRequest as refused:
        return _entry_page(request, cookies, entered, _shown(refused), 400)
    return account_page(request, cookies, "device.html", {"device": device}, "device-confirm")


@router.post("/device/confirm", include_in_schema=False)
async def confirm_code(request: Request, ctx: CtxDep, cookies: CookiesDep) -> Response:
    values = await account_form(request, cookies, "device-confirm")
    entered = first(values, "user_code")
    try:
        if first(values, "decision") != "confirm":
            await verification.deny_device_request(ctx, entered)
            return see_other("/device/done?error=access_denied")
        browser_id, is_new = cookies.ensure_browser_id(request)
        outcome = await verification.confirm_device_request(
            ctx, entered, browser_id, cookies.session_cookie(request))
    except errors.InvalidRequest as refused:
        return _entry_page(request, cookies, entered, _shown(refused), 400)
    response = respond(request, outcome)
    if is_new:
        cookies.set_browser_id(response, browser_id)
    return response


@router.get("/device/done", include_in_schema=False)
async def done(request: Request, result: str = "") -> Response:
    return page(request, "device_done.html", {"approved": result == "approved"})


@router.get("/device/qr.svg", summary="QR code of a device's verification link",
            tags=["OAuth 2.0"], response_class=Response,
            description="An SVG QR code of `verification_uri_complete` for `user_code`, for a "
                        "device with a screen to show (RFC 8628 §3.3.1). Made here, no "
                        "outside service.",
            responses={200: {"content": {"image/svg+xml": {}}},
                       400: {"description": "user_code is not a user code"}})
async def qr_code(ctx: CtxDep, user_code: str = "") -> Response:
    code = normalize_user_code(user_code)
    if code is None:
        raise errors.InvalidRequest("user_code is not a user code")
    svg = io.BytesIO()
    segno.make(verification_uri(ctx, code), error="m").save(
        svg, kind="svg", xmldecl=False, scale=6, border=2, title="Sign in this device")
    return Response(svg.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=600"})
