"""UserInfo (OIDC Core §5.3) with bearer tokens per RFC 6750 §2.1 (header) and §2.2 (form),
and DPoP-bound ones per RFC 9449 §7 (the DPoP scheme and a proof)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from idp import errors
from idp.services.tokens.dpop import Presentation
from idp.services.tokens.userinfo import userinfo
from idp.web.deps import FORM_TYPE, CtxDep, read_form
from idp.web.responses import NO_STORE, JSONBody, with_dpop_nonce

router = APIRouter(tags=["OpenID Connect"])


async def _access_token(request: Request) -> tuple[str | None, str]:
    """The access token and the scheme it came with: "bearer" (RFC 6750 §2.1 header, §2.2
    form body) or "dpop" (RFC 9449 §7.1)."""
    header = request.headers.get("authorization")
    from_header, scheme = None, "bearer"
    if header is not None:
        name, _, value = header.partition(" ")
        if name.lower() in ("bearer", "dpop"):
            if not value.strip():
                raise errors.InvalidRequest(f"The {name} authorization header has no token")
            from_header, scheme = value.strip(), name.lower()
        # Another scheme is an unsupported authentication method: RFC 6750 §3.1 answers it like
        # a request without authentication (a bare challenge, no error code).
    from_body = None
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == FORM_TYPE:
        from_body = dict(await read_form(request)).get("access_token")
    if from_header and from_body:
        # RFC 6750 §2: clients MUST NOT use more than one method.
        raise errors.InvalidRequest("The access token was sent in more than one way")
    return from_header or from_body, scheme


_RESPONSES: dict[int | str, dict[str, Any]] = {401: {
    "description": "invalid_token (RFC 6750 §3.1); for DPoP-bound tokens also "
                   "invalid_dpop_proof and use_dpop_nonce (RFC 9449 §7.1, §9)"}}


@router.get("/userinfo", summary="UserInfo endpoint", operation_id="userinfo_get",
            responses=_RESPONSES)
@router.post("/userinfo", summary="UserInfo endpoint (POST)", operation_id="userinfo_post",
             responses=_RESPONSES)
async def get_userinfo(request: Request, ctx: CtxDep) -> Response:
    access_token, scheme = await _access_token(request)
    if not access_token:
        # RFC 6750 §3.1: no error code when the request carried no authentication at all.
        return Response(status_code=401, headers={
            **NO_STORE, "WWW-Authenticate": 'Bearer realm="idp"'})
    proofs = tuple(request.headers.getlist("dpop"))
    presentation = Presentation(scheme, proofs, request.method, "/userinfo")
    body = await userinfo(ctx, access_token, presentation)
    return JSONBody(body, headers=with_dpop_nonce(ctx, NO_STORE, proofs))
