"""Dynamic client registration (RFC 7591) and management (RFC 7592): `/register`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from idp import errors
from idp.protocol.registration import client_metadata
from idp.routes.admin.common import Problem
from idp.services.accounts import registration
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE

router = APIRouter(tags=["Client registration"])

bearer = HTTPBearer(
    scheme_name="registration", auto_error=False,
    description="POST /register: an initial access token from the admin API, when "
                "IDP_REGISTRATION=token. /register/{client_id}: the client's registration "
                "access token.")
Token = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


class ClientMetadata(BaseModel):
    """RFC 7591 §2 and OIDC Dynamic Client Registration §2 metadata this server keeps;
    others are ignored and left out of the answer."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "client_name": "Smart speaker app", "application_type": "native",
        "redirect_uris": ["com.example.speaker:/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile offline_access"}]})

    redirect_uris: list[str] = Field(default_factory=list,
                                     description="Exact redirect URIs (https; loopback or "
                                                 "private-use schemes for native apps)")
    token_endpoint_auth_method: str = Field(
        default="client_secret_basic",
        description="client_secret_basic, client_secret_post, private_key_jwt or none")
    grant_types: list[str] = Field(default=["authorization_code"],
                                   description="Within IDP_REGISTRATION_GRANT_TYPES")
    response_types: list[str] = Field(default=["code"])
    client_name: str | None = None
    scope: str | None = Field(default=None,
                              description="Space-separated, within IDP_REGISTRATION_SCOPES")
    application_type: str = Field(default="web", description="web or native")
    id_token_signed_response_alg: str = Field(default="RS256", description="RS256 or ES256")
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    require_pushed_authorization_requests: bool = Field(
        default=False, description="Authorization requests only pushed to /par first "
                                   "(RFC 9126 §6)")
    dpop_bound_access_tokens: bool = Field(
        default=False, description="Token requests only with a DPoP proof (RFC 9449 §5.2)")
    subject_type: str = Field(
        default="public", description="public, or pairwise: a `sub` of the client's own "
                                      "sector (OIDC Core §8.1)")
    sector_identifier_uri: str | None = Field(
        default=None, description="https URL of a JSON array holding every redirect URI; its "
                                  "host is the pairwise sector (OIDC Registration §5). "
                                  "Fetched and checked: invalid_client_metadata otherwise")


class ClientInformation(ClientMetadata):
    """RFC 7591 §3.2.1: what was registered, with the server-set fields."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    client_id_issued_at: int
    client_secret: str | None = Field(
        default=None, description="On registration only, for client_secret_* clients: it is "
                                  "stored as a digest and never shown again")
    client_secret_expires_at: int | None = Field(default=None, description="0: never")
    registration_access_token: str
    registration_client_uri: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "invalid_client_metadata, invalid_redirect_uri "
                                           "or unapproved_software_statement (RFC 7591 §3.2.2)"},
    401: {"model": Problem, "description": "invalid_token: the initial or registration "
                                           "access token is missing, wrong or used up"},
    404: {"model": Problem, "description": "not_found: registration is off (IDP_REGISTRATION)"},
    429: {"model": Problem, "description": "too many registrations from this network"},
}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": ClientMetadata.model_json_schema()}}}}


async def _metadata(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise errors.InvalidClientMetadata("The request must be JSON (application/json)")
    try:
        metadata = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidClientMetadata("The request body is not valid JSON") from None
    if not isinstance(metadata, dict):
        raise errors.InvalidClientMetadata("The request body must be a JSON object")
    return metadata


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise errors.InvalidToken("A registration access token is required "
                                  "(Authorization: Bearer ...)")
    return credentials.credentials.strip()


def _answer(ctx: CtxDep, found: registration.Registration, status_code: int = 200
            ) -> JSONResponse:
    body = client_metadata(found.client)
    body["client_id_issued_at"] = found.issued_at
    if found.client_secret is not None:
        body["client_secret"] = found.client_secret
        body["client_secret_expires_at"] = 0
    body["registration_access_token"] = found.registration_token
    body["registration_client_uri"] = f"{ctx.settings.issuer}/register/{found.client.client_id}"
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)


@router.post("/register", summary="Register a client (RFC 7591)", status_code=201,
             response_model=ClientInformation, responses=_ERRORS, openapi_extra=_BODY,
             description="On when IDP_REGISTRATION is `open` or `token` (then with an initial "
                         "access token as the bearer token). The client secret and the "
                         "registration access token are in this answer only.")
async def register(request: Request, ctx: CtxDep, token: Token) -> JSONResponse:
    initial = token.credentials.strip() if token is not None else None
    found = await registration.register(ctx, await _metadata(request), initial or None)
    return _answer(ctx, found, 201)


@router.get("/register/{client_id}", summary="Read a registration (RFC 7592)",
            response_model=ClientInformation, responses=_ERRORS,
            description="With the registration access token. The client secret is never "
                        "shown again.")
async def read_registration(ctx: CtxDep, token: Token, client_id: str) -> JSONResponse:
    return _answer(ctx, await registration.read(ctx, client_id, _token(token)))


@router.put("/register/{client_id}", summary="Replace a registration (RFC 7592)",
            response_model=ClientInformation, responses=_ERRORS, openapi_extra=_BODY,
            description="The metadata sent replace the registration's; absent fields take "
                        "their defaults. Include `client_id`; never the server-set fields. "
                        "The authentication method and application type cannot change.")
async def replace_registration(request: Request, ctx: CtxDep, token: Token, client_id: str
                               ) -> JSONResponse:
    access = _token(token)
    found = await registration.replace(ctx, client_id, access, await _metadata(request))
    return _answer(ctx, found)


@router.delete("/register/{client_id}", summary="Delete a registration (RFC 7592)",
               status_code=204, responses=_ERRORS,
               description="The client and everything issued to it; its tokens stop working.")
async def delete_registration(ctx: CtxDep, token: Token, client_id: str) -> Response:
    await registration.deregister(ctx, client_id, _token(token))
    return Response(status_code=204, headers=NO_STORE)
