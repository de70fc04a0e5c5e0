"""The Profile API (`/profile/v1/me`): apps read and write the customer's profile with an
access token of their grant (RFC 6750 bearer, or DPoP-bound per RFC 9449 §7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from idp import errors
from idp.services.tokens.dpop import Presentation
from idp.services.tokens.profile_api import MAX_BODY_BYTES, PATH, read_profile, write_profile
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE, with_dpop_nonce

router = APIRouter(prefix="/profile/v1", tags=["Profile API"])

EXAMPLE: dict[str, Any] = {"sub": "Zt1q0bS8ZyWm2xR4aV7c9g", "attributes": {
    "given_name": {"value": "Alice", "source": "customer", "updated_at": 1795000000},
    "loyalty_tier": {"value": "gold", "source": "app", "updated_at": 1795000420},
    "email": {"value": "alice@example.com"}, "email_verified": {"value": True}}}


class AttributeValue(BaseModel):
    value: Any = Field(description="string, number, boolean, or an address object")
    source: str | None = Field(default=None, description=(
        "where the value came from: customer (typed by the customer), upstream (imported "
        "from a social or enterprise sign-in), app (written by an app), operator, or "
        "imported (held before sources were recorded)"), examples=["app"])
    updated_at: int | None = Field(default=None, description="when it was set (epoch s)")


class ProfileOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    sub: str = Field(description="the subject the app knows the customer by (its ID "
                                 "token's `sub`)")
    attributes: dict[str, AttributeValue] = Field(description=(
        "the attributes whose purposes the customer granted to this app, and the standard "
        "claims of its granted scopes"))


class Problem(BaseModel):
    """RFC 6749 / RFC 6750 error vocabulary; the description names the attribute."""

    error: str = Field(examples=["insufficient_scope"])
    error_description: str | None = Field(default=None, examples=[
        "loyalty_tier: the customer's consent to this app covers none of its purposes "
        "(loyalty)"])


def _error(description: str, example: dict[str, str]) -> dict[str, Any]:
    return {"model": Problem, "description": description,
            "content": {"application/json": {"example": example}}}


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("invalid_token: none, expired, revoked, or its grant was withdrawn (the "
                "consent is judged live). A request without a token gets a bare challenge; "
                "DPoP-bound tokens also invalid_dpop_proof, use_dpop_nonce (RFC 9449)",
                {"error": "invalid_token",
                 "error_description": "The access token is invalid, expired or revoked"}),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("invalid_request: not a JSON object, an attribute that does not exist, or a "
                "value that breaks its attribute's rules (named, with the rule)",
                {"error": "invalid_request",
                 "error_description": "shoe_size: must be at most 60"}),
    **READ_ERRORS,
    403: _error("insufficient_scope: the attribute is identity or descriptive data (apps "
                "write attitudinal and behavioral attributes only), or the customer's "
                "consent to this app covers none of its purposes",
                {"error": "insufficient_scope",
                 "error_description": "loyalty_tier: the customer's consent to this app "
                                      "covers none of its purposes (loyalty)"}),
    413: _error(f"invalid_request: the body exceeds {MAX_BODY_BYTES} bytes",
                {"error": "invalid_request",
                 "error_description": f"The request body exceeds {MAX_BODY_BYTES} bytes"}),
    415: _error("invalid_request: not application/merge-patch+json or application/json",
                {"error": "invalid_request",
                 "error_description": "Send a JSON Merge Patch "
                                      "(application/merge-patch+json)"}),
}
PATCH_BODY = {"requestBody": {"required": True, "content": {
    media: {"schema": {"type": "object", "additionalProperties": True,
                       "description": "attribute name to its new value; null removes it"},
            "example": {"loyalty_tier": "gold", "newsletter_topics": None}}
    for media in ("application/merge-patch+json", "application/json")}}}


def _presentation(request: Request) -> tuple[str, Presentation] | None:
    """The access token from the Authorization header (RFC 6750 §2.1, RFC 9449 §7.1)."""
    name, _, value = request.headers.get("authorization", "").partition(" ")
    if name.lower() not in ("bearer", "dpop"):
        return None
    if not value.strip():
        raise errors.InvalidRequest(f"The {name} authorization header has no token")
    proofs = tuple(request.headers.getlist("dpop"))
    return value.strip(), Presentation(name.lower(), proofs, request.method, PATH)


def _challenge() -> Response:
    # RFC 6750 §3.1: no error code when the request carried no authentication at all.
    return Response(status_code=401, headers={**NO_STORE,
                                              "WWW-Authenticate": 'Bearer realm="idp"'})


@router.get("/me", summary="Read the customer's profile, as the consent allows",
            response_model=ProfileOut, responses=READ_ERRORS, description=(
                "The attributes whose purposes the customer granted to the app this token "
                "was issued to, and the standard claims of the granted scopes, each with "
                "its kind of source and time. Every read is recorded in the customer's "
                "access log (shown in their account center and export)."))
async def get_profile(request: Request, ctx: CtxDep) -> Response:
    presented = _presentation(request)
    if presented is None:
        return _challenge()
    body = await read_profile(ctx, *presented)
    return JSONResponse(body, headers=with_dpop_nonce(ctx, NO_STORE, presented[1].proofs))


@router.patch("/me", summary="Write attitudinal or behavioral attributes",
              response_model=ProfileOut, responses=WRITE_ERRORS, openapi_extra=PATCH_BODY,
              description=(
                  "A JSON Merge Patch (RFC 7396): each member sets an attribute, null "
                  "removes it. Only attitudinal and behavioral attributes (preferences, "
                  "survey answers, loyalty tier), and only for a purpose the customer "
                  "granted to this app; each value keeps the app as its source. Every "
                  "attribute is checked before any is written: all or nothing. Answers "
                  "with the profile as GET does."))
async def patch_profile(request: Request, ctx: CtxDep) -> Response:
    presented = _presentation(request)
    if presented is None:
        return _challenge()
    body = await write_profile(ctx, *presented, await request.body(),
                               request.headers.get("content-type", ""))
    return JSONResponse(body, headers=with_dpop_nonce(ctx, NO_STORE, presented[1].proofs))
