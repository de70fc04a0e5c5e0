"""Grant API (FAPI Grant Management draft): GET and DELETE /grants/{grant_id}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from idp import errors
from idp.services.tokens.grant_api import end_grant, read_grant
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE

router = APIRouter(prefix="/grants", tags=["Grant management"])
RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "invalid_token (RFC 6750 §3.1)"},
    403: {"description": "The token belongs to another grant"},
}


def _token(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.InvalidToken("A bearer access token of this grant is required")
    return value.strip()


@router.get("/{grant_id}", summary="Read the grant the access token was issued under",
            responses=RESPONSES)
async def get_grant(grant_id: str, request: Request, ctx: CtxDep) -> JSONResponse:
    return JSONResponse(await read_grant(ctx, _token(request), grant_id), headers=NO_STORE)


@router.delete("/{grant_id}", summary="End the grant: every token of it is revoked",
               status_code=204, response_class=Response, responses=RESPONSES)
async def delete_grant(grant_id: str, request: Request, ctx: CtxDep) -> Response:
    await end_grant(ctx, _token(request), grant_id)
    return Response(status_code=204, headers=NO_STORE)
