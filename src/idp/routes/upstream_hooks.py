"""Endpoints the upstreams call on their own (federation.md §9 D): Apple server-to-server
notifications (requirement 27), Google RISC security events (28), Facebook deauthorize (29)
and data deletion (30). They carry
no cookies and are authenticated by the upstream's signature alone."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.responses import Response

from idp.services.accounts import upstream_hooks as hooks
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE

router = APIRouter(prefix="/federation/{alias}", tags=["Upstream hooks"],
                   include_in_schema=False)
MAX_BODY = 16 * 1024


def _refused() -> JSONResponse:
    return JSONResponse({"error": "invalid_request"}, status_code=400, headers=NO_STORE)


def _unknown() -> JSONResponse:
    return JSONResponse({"error": "not_found"}, status_code=404, headers=NO_STORE)


@router.post("/notifications")
async def apple_notifications(alias: str, request: Request, ctx: CtxDep) -> Response:
    """Requirement 27: "200 for handled and unknown types, 400 for a bad signature"."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return _refused()
    try:
        outcome = await hooks.apple_notification(ctx, alias, body)
    except hooks.HookRefused:
        return _unknown()
    if outcome == "invalid":
        return _refused()
    return Response(status_code=200, headers=NO_STORE)


@router.post("/risc")
async def google_risc(alias: str, request: Request, ctx: CtxDep) -> Response:
    """Requirement 28: "202 on success and 400 on an invalid token"."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return _refused()
    try:
        outcome = await hooks.google_security_event(ctx, alias, body)
    except hooks.HookRefused:
        return _unknown()
    if outcome == "invalid":
        return _refused()
    if outcome == "unavailable":
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503,
                            headers=NO_STORE)
    return Response(status_code=202, headers=NO_STORE)


async def _signed_request(request: Request) -> str | None:
    fields = [v for k, v in await read_form(request) if k == "signed_request"]
    return fields[0] if len(fields) == 1 else None


@router.post("/deauthorize")
async def facebook_deauthorize(alias: str, request: Request, ctx: CtxDep) -> Response:
    """Requirement 29: 200 once handled; 400 when the signed_request does not verify."""
    signed = await _signed_request(request)
    if signed is None:
        return _refused()
    try:
        outcome = await hooks.facebook_deauthorize(ctx, alias, signed)
    except hooks.HookRefused:
        return _unknown()
    if outcome == "invalid":
        return _refused()
    return Response(status_code=200, headers=NO_STORE)


@router.post("/deletion")
async def facebook_deletion(alias: str, request: Request, ctx: CtxDep) -> Response:
    """Requirement 30: answers {"url": <status page>, "confirmation_code": <code>}."""
    signed = await _signed_request(request)
    if signed is None:
        return _refused()
    try:
        receipt = await hooks.facebook_deletion(ctx, alias, signed)
    except hooks.HookRefused:
        return _unknown()
    if receipt is None:
        return _refused()
    return JSONResponse({"url": receipt.url, "confirmation_code": receipt.confirmation_code},
                        headers=NO_STORE)


@router.get("/deletion/{code}")
async def deletion_status(alias: str, code: str, ctx: CtxDep) -> Response:
    """Requirement 30: the job's state for this code, without authentication, and nothing
    else: no name, no email, no identifier of the customer."""
    row = await hooks.deletion_status(ctx, alias, code)
    if row is None:
        return HTMLResponse("<!doctype html><title>Unknown request</title>"
                            "<p>No data-deletion request has this confirmation code.</p>",
                            status_code=404, headers=NO_STORE)
    return HTMLResponse(
        f"<!doctype html><title>Data deletion</title><p>Data-deletion request: "
        f"<strong id=\"status\">{escape(row.status)}</strong>.</p>", headers=NO_STORE)
