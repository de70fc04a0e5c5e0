"""UserInfo (OIDC Core §5.3) with bearer tokens per RFC 6750 §2.1 (header) and §2.2 (form)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from idp import errors
from idp.services.tokens.userinfo import userinfo
from idp.web.deps import FORM_TYPE, CtxDep, read_form
from idp.web.responses import NO_STORE

router = APIRouter(tags=["OpenID Connect"])


async def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    from_header = None
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            if not value.strip():
                raise errors.InvalidRequest("The Bearer authorization header has no token")
            from_header = value.strip()
        # Another scheme is an unsupported authentication method: RFC 6750 §3.1 answers it like
        # a request without authentication (a bare challenge, no error code).
    from_body = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == FORM_TYPE:
        from_body = dict(await read_form(request)).get("access_token")
    if from_header and from_body:
        # RFC 6750 §2: clients MUST NOT use more than one method.
        raise errors.InvalidRequest("The access token was sent in more than one way")
    return from_header or from_body


@router.get("/userinfo", summary="UserInfo endpoint", operation_id="userinfo_get",
            responses={401: {"description": "invalid_token (RFC 6750 §3.1)"}})
@router.post("/userinfo", summary="UserInfo endpoint (POST)", operation_id="userinfo_post",
             responses={401: {"description": "invalid_token (RFC 6750 §3.1)"}})
async def get_userinfo(request: Request, ctx: CtxDep) -> Response:
    access_token = await _bearer_token(request)
    if not access_token:
        # RFC 6750 §3.1: no error code when the request carried no authentication at all.
        return Response(status_code=401, headers={
            **NO_STORE, "WWW-Authenticate": 'Bearer realm="idp"'})
    return JSONResponse(await userinfo(ctx, access_token), headers=NO_STORE)
