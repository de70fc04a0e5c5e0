"""Revocation (RFC 7009) and introspection (RFC 7662) endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from idp.protocol.authorize import single_values
from idp.services.tokens.introspection import introspect
from idp.services.tokens.revocation import revoke
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE, JSONBody

router = APIRouter(tags=["OAuth 2.0"])


def _form_body(*names: str) -> dict[str, object]:
    return {"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": {
            "type": "object", "required": ["token"],
            "properties": {n: {"type": "string"} for n in names}}}}}}


@router.post("/revoke", summary="Token revocation (RFC 7009)",
             openapi_extra=_form_body("token", "token_type_hint", "client_id", "client_secret"),
             responses={200: {"description": "Revoked, or the token was unknown"}})
async def revocation(request: Request, ctx: CtxDep) -> Response:
    values, repeated = single_values(await read_form(request))
    await revoke(ctx, values, repeated, request.headers.get("authorization"))
    return Response(status_code=200, headers=NO_STORE)


@router.post("/introspect", summary="Token introspection (RFC 7662)",
             openapi_extra=_form_body("token", "token_type_hint", "client_id", "client_secret"))
async def introspection(request: Request, ctx: CtxDep) -> JSONResponse:
    values, repeated = single_values(await read_form(request))
    body = await introspect(ctx, values, repeated, request.headers.get("authorization"))
    return JSONBody(body, headers=NO_STORE)
