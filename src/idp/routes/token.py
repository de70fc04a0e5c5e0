"""The token endpoint (RFC 6749 §3.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from idp.protocol.authorize import single_values
from idp.services.tokens.endpoint import exchange
from idp.web.deps import CtxDep, read_form
from idp.web.responses import NO_STORE, JSONBody, with_dpop_nonce

router = APIRouter(tags=["OAuth 2.0"])

TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "required": ["grant_type"],
            "properties": {name: {"type": "string"} for name in (
                "grant_type", "code", "redirect_uri", "code_verifier", "client_id",
                "client_secret",
            )},
        }}},
    }
}


@router.post("/token", summary="Token endpoint", openapi_extra=TOKEN_FORM,
             description="With a `DPoP` proof header (RFC 9449 §5) the access token is "
                         "bound to the proof's key (`token_type` `DPoP`).",
             responses={200: {"description": "Token response (RFC 6749 §5.1)"},
                        400: {"description": "Error response (RFC 6749 §5.2)"},
                        401: {"description": "Client authentication failed"}})
async def token(request: Request, ctx: CtxDep) -> JSONResponse:
    values, repeated = single_values(await read_form(request))
    proofs = request.headers.getlist("dpop")
    body: dict[str, Any] = await exchange(ctx, values, repeated,
                                          request.headers.get("authorization"), proofs)
    # RFC 6749 §5.1: token responses must not be cached.
    return JSONBody(body, headers=with_dpop_nonce(ctx, NO_STORE, proofs))
