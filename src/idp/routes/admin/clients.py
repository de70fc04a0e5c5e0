"""Admin API: client registrations, and the initial access tokens of dynamic registration."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, Writer, new_router
from idp.services.accounts import admin, registration
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE

router = new_router()

# OIDC Registration §2 / RFC 7591 §2: shown on the consent page; https (http on loopback in
# dev mode).
LOGO_URI = "The app's logo, shown on the consent page"
POLICY_URI = "The app's privacy policy, linked from the consent page"
TOS_URI = "The app's terms of service, linked from the consent page"
SUBJECT_TYPE = ("OIDC Core §8: `public`, every app sees the account id as `sub` (the brand's "
                "own apps); `pairwise`, the app gets a `sub` of its own sector (§8.1), so "
                "partners cannot correlate customers. Fixed once registered.")
SECTOR_URI = ("OIDC Registration §2: an https URL of a JSON array listing every redirect "
              "URI; its host is the pairwise sector. Needed for a pairwise app whose redirect "
              "URIs are on several hosts; fetched and checked on every change.")


class ClientOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "client_id": "Zt1q0bS8ZyWm2xR4aV7c9g", "name": "Web shop",
        "client_type": "confidential", "application_type": "web",
        "token_endpoint_auth_method": "client_secret_basic",
        "redirect_uris": ["https://shop.example.com/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email"], "optional_scopes": ["email"],
        "id_token_signed_response_alg": "RS256", "require_pkce": True,
        "long_sessions": False, "post_logout_redirect_uris": [],
        "backchannel_logout_uri": None, "backchannel_logout_session_required": True,
        "jwks": None, "jwks_uri": None, "event_uri": None, "require_par": False,
        "dpop_bound_access_tokens": False, "require_mfa": False,
        "logo_uri": "https://shop.example.com/logo.png",
        "policy_uri": "https://shop.example.com/privacy",
        "tos_uri": "https://shop.example.com/terms"}]})

    client_id: str
    name: str
    client_type: Literal["public", "confidential"]
    application_type: Literal["web", "native"]
    token_endpoint_auth_method: str
    redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[str]
    optional_scopes: list[str]
    id_token_signed_response_alg: str
    require_pkce: bool
    long_sessions: bool
    post_logout_redirect_uris: list[str]
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    event_uri: str | None
    require_par: bool = Field(description="Authorization requests only pushed to /par first "
                                          "(RFC 9126)")
    dpop_bound_access_tokens: bool = Field(
        default=False, description="Token requests only with a DPoP proof, so every access "
                                   "token is bound to the app's key (RFC 9449 §5.2)")
    require_mfa: bool = Field(
        default=False, description="Every sign-in to this app uses a second factor: a "
                                   "customer without one is asked to set it up, tokens carry "
                                   "acr urn:idp:acr:mfa")
    logo_uri: str | None = Field(default=None, description=LOGO_URI)
    policy_uri: str | None = Field(default=None, description=POLICY_URI)
    tos_uri: str | None = Field(default=None, description=TOS_URI)
    subject_type: Literal["public", "pairwise"] = Field(default="public",
                                                        description=SUBJECT_TYPE)
    sector_identifier_uri: str | None = Field(default=None, description=SECTOR_URI)


class NewClientOut(ClientOut):
    client_secret: str | None = Field(
        description="Shown once, never stored: keep it now. None for public and "
                    "private_key_jwt clients.")


class ClientChanges(BaseModel):
    """Fields to change; absent ones stay. The same rules as at creation apply."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Web shop (EU)",
        "redirect_uris": ["https://shop.example.com/callback",
                          "https://eu.shop.example.com/callback"]}]})

    name: str | None = Field(default=None, max_length=200)
    redirect_uris: list[str] | None = Field(default=None, max_length=50)
    grant_types: list[str] | None = Field(default=None, max_length=10)
    scopes: list[str] | None = Field(default=None, max_length=100)
    optional_scopes: list[str] | None = Field(default=None, max_length=100)
    id_token_signed_response_alg: Literal["RS256", "ES256"] | None = None
    require_pkce: bool | None = None
    long_sessions: bool | None = None
    post_logout_redirect_uris: list[str] | None = Field(default=None, max_length=50)
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    backchannel_logout_session_required: bool | None = None
    jwks_uri: str | None = Field(default=None, max_length=2000)
    event_uri: str | None = Field(default=None, max_length=2000)
    require_par: bool | None = None
    dpop_bound_access_tokens: bool | None = None
    require_mfa: bool | None = None
    logo_uri: str | None = Field(default=None, max_length=2000, description=LOGO_URI)
    policy_uri: str | None = Field(default=None, max_length=2000, description=POLICY_URI)
    tos_uri: str | None = Field(default=None, max_length=2000, description=TOS_URI)
    subject_type: Literal["public", "pairwise"] | None = Field(default=None,
                                                               description=SUBJECT_TYPE)
    sector_identifier_uri: str | None = Field(default=None, max_length=2000,
                                              description=SECTOR_URI)


class NewClientIn(ClientChanges):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "Web shop", "redirect_uris": ["https://shop.example.com/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email"]}]})

    name: str = Field(max_length=200)
    redirect_uris: list[str] = Field(default_factory=list, max_length=50)
    client_type: Literal["public", "confidential"] = "confidential"
    application_type: Literal["web", "native"] = "web"
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post",
                                        "private_key_jwt", "none"] | None = None
    jwks: dict[str, Any] | None = None


class SecretOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "client_id": "Zt1q0bS8ZyWm2xR4aV7c9g", "client_secret": "kq3V...shown-once"}]})

    client_id: str
    client_secret: str = Field(description="Shown once, never stored: keep it now.")


@router.get("/clients", summary="List clients", response_model=list[ClientOut],
            description="Every registered client, oldest first. Secrets are never shown.")
async def list_clients(ctx: CtxDep, _: Reader) -> Any:
    return [admin.public_view(c) for c in await admin.list_clients(ctx)]


@router.post("/clients", summary="Register a client", status_code=201,
             response_model=NewClientOut,
             description="The same rules as `idp clients create`: exact https redirect URIs "
                         "(loopback and private-use schemes for native apps), no `none` "
                         "signing algorithm, no fragments. The secret is in this answer only.")
async def create_client(ctx: CtxDep, actor: Writer, body: NewClientIn) -> Any:
    fields = body.model_dump(exclude_none=True)
    new = await admin.create_client(ctx, actor=actor, **fields)
    return JSONResponse({**admin.public_view(new.client), "client_secret": new.client_secret},
                        status_code=201, headers=NO_STORE)


@router.get("/clients/{client_id}", summary="Read a client", response_model=ClientOut,
            description="One registration as it stands; never its secret.")
async def read_client(ctx: CtxDep, _: Reader, client_id: str) -> Any:
    return admin.public_view(await admin.get_client(ctx, client_id))


@router.patch("/clients/{client_id}", summary="Change a client", response_model=ClientOut,
              description="Only the fields sent change; the registration rules are checked "
                          "on the result. Other processes see the change within "
                          "IDP_CLIENT_CACHE_SECONDS.")
async def update_client(ctx: CtxDep, actor: Writer, client_id: str, body: ClientChanges
                        ) -> Any:
    changes = body.model_dump(exclude_unset=True)
    return admin.public_view(await admin.update_client(ctx, client_id, changes, actor=actor))


@router.post("/clients/{client_id}/secret", summary="Rotate a client's secret",
             response_model=SecretOut,
             description="A new secret, in this answer only; the old one stops working.")
async def rotate_secret(ctx: CtxDep, actor: Writer, client_id: str) -> Any:
    secret = await admin.rotate_client_secret(ctx, client_id, actor=actor)
    return JSONResponse({"client_id": client_id, "client_secret": secret}, headers=NO_STORE)


@router.delete("/clients/{client_id}", summary="Delete a client", status_code=204,
               description="The registration and everything issued to it: grants, codes, "
                           "refresh tokens; its access tokens introspect inactive. The consent "
                           "ledger keeps its entries.")
async def delete_client(ctx: CtxDep, actor: Writer, client_id: str) -> Response:
    await admin.delete_client(ctx, client_id, actor=actor)
    return Response(status_code=204)


class RegistrationTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "uses": 5, "expires_in": 604800, "note": "Partner: Example TV apps"}]})

    uses: int = Field(default=1, ge=1, le=registration.MAX_INITIAL_TOKEN_USES,
                      description="How many clients it may register")
    expires_in: int = Field(default=86_400, ge=60, le=registration.MAX_INITIAL_TOKEN_SECONDS,
                            description="Seconds from now")
    note: str = Field(default="", max_length=200, description="Who it is for")


class RegistrationTokenOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "pX2m9QwZ0cJh3sLk", "note": "Partner: Example TV apps",
        "created_by": "Zt1q0bS8ZyWm2xR4aV7c9g", "created_at": 1796000000,
        "expires_at": 1796604800, "uses_left": 5}]})

    id: str
    note: str
    created_by: str
    created_at: int
    expires_at: int
    uses_left: int


class NewRegistrationTokenOut(RegistrationTokenOut):
    token: str = Field(description="The initial access token (RFC 7591 §3), in this answer "
                                   "only: the bearer token of POST /register.")


@router.post("/registration-tokens", summary="Issue an initial access token", status_code=201,
             response_model=NewRegistrationTokenOut,
             description="Lets its holder register clients at /register (RFC 7591) while "
                         "IDP_REGISTRATION=token: `uses` registrations until it expires. Same "
                         "as `idp admin registration-token`.")
async def issue_registration_token(ctx: CtxDep, actor: Writer, body: RegistrationTokenIn
                                   ) -> Any:
    view, token = await registration.issue_initial_token(
        ctx, uses=body.uses, expires_in=body.expires_in, note=body.note, actor=actor)
    return JSONResponse({**asdict(view), "token": token}, status_code=201, headers=NO_STORE)


@router.get("/registration-tokens", summary="List initial access tokens",
            response_model=list[RegistrationTokenOut],
            description="Those not yet expired, newest first, used-up ones included; never "
                        "the tokens themselves.")
async def list_registration_tokens(ctx: CtxDep, _: Reader) -> Any:
    return [asdict(view) for view in await registration.list_initial_tokens(ctx)]


@router.delete("/registration-tokens/{token_id}", summary="Revoke an initial access token",
               status_code=204, description="It registers nothing more; clients it registered "
                                            "stay.")
async def revoke_registration_token(ctx: CtxDep, actor: Writer, token_id: str) -> Response:
    await registration.revoke_initial_token(ctx, token_id, actor=actor)
    return Response(status_code=204)
