"""The admin API (`/admin/v1`): what operators do, from the OpenAPI docs page or any HTTP
client, with an access token of our own (client_credentials) granted `admin:read` or
`admin:write`. `idp admin bootstrap` creates the first admin client. The CLI calls the same
service functions; every change lands in the audit log (`/admin/v1/audit-events`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from idp import errors
from idp.federation.config import UpstreamConfig
from idp.services import InvalidInput, NotFound
from idp.services.accounts import admin, audit, operations, operators
from idp.services.consent import ledger, purposes
from idp.services.consent.receipts import receipt
from idp.services.tokens.bearer import authenticate_client_bearer
from idp.services.upstream import providers
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE

READ, WRITE = "admin:read", "admin:write"

# Swagger UI's "Authorize" button: client_credentials at our own token endpoint.
oauth2 = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(
        tokenUrl="/token", scopes={READ: "read everything the admin API shows",
                                   WRITE: "change it (implies reading)"})),
    scheme_name="admin", auto_error=False,
    description="An access token of an admin client (`idp admin bootstrap`), from /token "
                "with grant_type=client_credentials.")


class Problem(BaseModel):
    """RFC 6749 / RFC 6750 error vocabulary."""

    error: str = Field(examples=["invalid_request"])
    error_description: str | None = Field(default=None,
                                          examples=["redirect URI must use https"])


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "invalid_request: the input breaks a rule"},
    401: {"model": Problem, "description": "invalid_token: none, unknown, expired or revoked"},
    403: {"model": Problem, "description": "insufficient_scope: admin:write is needed"},
    404: {"model": Problem, "description": "not_found"},
}


async def _token(authorization: Annotated[str | None, Security(oauth2)]) -> str:
    if not authorization:
        raise errors.InvalidToken("An access token is required (Authorization: Bearer ...)")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise errors.InvalidToken("An access token is required (Authorization: Bearer ...)")
    return value.strip()


async def reader(ctx: CtxDep, token: Annotated[str, Depends(_token)]) -> str:
    claims = await authenticate_client_bearer(ctx, token, (READ, WRITE))
    return str(claims["client_id"])


async def writer(ctx: CtxDep, token: Annotated[str, Depends(_token)]) -> str:
    claims = await authenticate_client_bearer(ctx, token, (WRITE,))
    return str(claims["client_id"])


Reader = Annotated[str, Depends(reader)]
Writer = Annotated[str, Depends(writer)]

router = APIRouter(prefix="/admin/v1", tags=["Admin"], responses=ERRORS,
                   dependencies=[Security(oauth2)])


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
        "jwks": None, "jwks_uri": None, "event_uri": None}]})

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


class AuditEventOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "f3Kq0bS8ZyWm2xR4aV7c9g", "at": 1795000420, "actor": "Zt1q0bS8ZyWm2xR4aV7c9g",
        "action": "client.update", "target_type": "client", "target_id": "Ab3q0bS8ZyWm2xR4aV7c9g",
        "before": {"name": "Web shop"}, "after": {"name": "Web shop (EU)"}}]})

    id: str
    at: int = Field(description="seconds since the epoch, UTC")
    actor: str = Field(description="the admin client's id, or `cli`")
    action: str = Field(examples=["client.update"])
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _client(client: Any) -> dict[str, Any]:
    return admin.public_view(client)


@router.get("/clients", summary="List clients", response_model=list[ClientOut],
            description="Every registered client, oldest first. Secrets are never shown.")
async def list_clients(ctx: CtxDep, _: Reader) -> Any:
    return [_client(c) for c in await admin.list_clients(ctx)]


@router.post("/clients", summary="Register a client", status_code=201,
             response_model=NewClientOut,
             description="The same rules as `idp clients create`: exact https redirect URIs "
                         "(loopback and private-use schemes for native apps), no `none` "
                         "signing algorithm, no fragments. The secret is in this answer only.")
async def create_client(ctx: CtxDep, actor: Writer, body: NewClientIn) -> Any:
    fields = body.model_dump(exclude_none=True)
    new = await admin.create_client(ctx, actor=actor, **fields)
    return JSONResponse({**_client(new.client), "client_secret": new.client_secret},
                        status_code=201, headers=NO_STORE)


@router.get("/clients/{client_id}", summary="Read a client", response_model=ClientOut,
            description="One registration as it stands; never its secret.")
async def read_client(ctx: CtxDep, _: Reader, client_id: str) -> Any:
    return _client(await admin.get_client(ctx, client_id))


@router.patch("/clients/{client_id}", summary="Change a client", response_model=ClientOut,
              description="Only the fields sent change; the registration rules are checked "
                          "on the result. Other processes see the change within "
                          "IDP_CLIENT_CACHE_SECONDS.")
async def update_client(ctx: CtxDep, actor: Writer, client_id: str, body: ClientChanges
                        ) -> Any:
    changes = body.model_dump(exclude_unset=True)
    return _client(await admin.update_client(ctx, client_id, changes, actor=actor))


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


@router.get("/audit-events", summary="The admin audit log", response_model=list[AuditEventOut],
            description="Newest first. Page on with `after` set to the last id of a page.")
async def audit_events(ctx: CtxDep, _: Reader,
                       target_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
                       after: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    events = await audit.events(ctx, target_id=target_id, limit=limit, after=after)
    return [event.__dict__ for event in events]


class AccountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "8Qe2xR4aV7c9gZt1q0bS8Z", "email": "alice@example.com", "email_verified": True,
        "has_password": True, "created_at": 1794999990, "updated_at": 1795000420,
        "disabled_at": None}]})

    id: str = Field(description="the account's `sub`")
    email: str | None
    email_verified: bool
    has_password: bool
    created_at: int
    updated_at: int
    disabled_at: int | None = Field(description="set while the account may not sign in")


class SignedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"sessions_ended": 2}]})

    sessions_ended: int


class Deleted(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "apps_disconnected": 3, "sessions_ended": 1, "upstream_revocations": 1}]})

    apps_disconnected: int
    sessions_ended: int
    upstream_revocations: int


@router.get("/users", summary="Find customer accounts", response_model=list[AccountOut],
            description="In id order, `limit` at a time; `email` matches the start of the "
                        "address; page on with `after` set to the last id of a page.")
async def find_users(ctx: CtxDep, _: Reader,
                     email: Annotated[str | None, Query(max_length=320)] = None,
                     limit: Annotated[int, Query(ge=1, le=operators.MAX_PAGE)] = 50,
                     after: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    found = await operators.find_accounts(ctx, email=email, limit=limit, after=after)
    return [operators.as_dict(account) for account in found]


@router.get("/users/{user_id}", summary="Read a customer account", response_model=AccountOut,
            description="The account's standing; its profile and history are in the export.")
async def read_user(ctx: CtxDep, _: Reader, user_id: str) -> Any:
    return operators.as_dict(await operators.get_account(ctx, user_id))


@router.post("/users/{user_id}/disable", summary="Disable a customer account",
             response_model=AccountOut,
             description="No sign-in of any kind; every session ends (apps get back-channel "
                         "logout) and every token is revoked at once.")
async def disable_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return operators.as_dict(await operators.set_disabled(ctx, user_id, True, actor=actor))


@router.post("/users/{user_id}/enable", summary="Enable a customer account again",
             response_model=AccountOut,
             description="The customer may sign in again; nothing revoked comes back.")
async def enable_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return operators.as_dict(await operators.set_disabled(ctx, user_id, False,
                                                              actor=actor))


@router.post("/users/{user_id}/sign-out", summary="Sign a customer out everywhere",
             response_model=SignedOut,
             description="Every session ends (apps get back-channel logout) and every refresh "
                         "token is revoked, offline ones included.")
async def sign_out_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return {"sessions_ended": await operators.sign_out_everywhere(ctx, user_id,
                                                                      actor=actor)}


@router.delete("/users/{user_id}", summary="Delete a customer account", response_model=Deleted,
               description="Erasure (GDPR Art. 17): the account and its personal data; apps "
                           "are told, upstream providers' grants revoked; the consent "
                           "ledger keeps its chain with the personal payloads erased.")
async def delete_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return await operators.delete(ctx, user_id, actor=actor)


@router.get("/users/{user_id}/export", summary="Export a customer's data",
            description="What the customer would download from the account center "
                        "(GDPR Art. 15 and 20). The export itself is in the audit log.")
async def export_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return JSONResponse(await operators.export(ctx, user_id, actor=actor),
                            headers=NO_STORE)


class GrantOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "k3JqV0bS8ZyWm2xR", "user_id": "8Qe2xR4aV7c9gZt1q0bS8Z",
        "client_id": "Zt1q0bS8ZyWm2xR4aV7c9g", "scopes": ["openid", "profile"],
        "purposes": [{"id": "order_updates", "version": 1}], "channel": "web",
        "created_at": 1794999995, "updated_at": 1795000420, "revoked_at": None}]})

    id: str
    user_id: str
    client_id: str
    scopes: list[str]
    purposes: list[dict[str, Any]] = Field(examples=[[{"id": "order_updates", "version": 1}]])
    channel: str
    created_at: int
    updated_at: int
    revoked_at: int | None


@router.get("/grants", summary="List grants of a customer or of an app",
            response_model=list[GrantOut],
            description="Name `user_id` or `client_id` (or both); live grants unless "
                        "`include_revoked`; id order, `after` the last id of a page.")
async def list_grants(ctx: CtxDep, _: Reader,
                      user_id: Annotated[str | None, Query(max_length=64)] = None,
                      client_id: Annotated[str | None, Query(max_length=64)] = None,
                      include_revoked: bool = False,
                      limit: Annotated[int, Query(ge=1, le=operations.MAX_PAGE)] = 50,
                      after: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    found = await operations.grants(ctx, user_id=user_id, client_id=client_id,
                                        live_only=not include_revoked, limit=limit,
                                        after=after)
    return [operations.grant_dict(grant) for grant in found]


@router.delete("/grants/{grant_id}", summary="Revoke a grant", status_code=204,
               description="As if the customer disconnected the app: the grant ends, its "
                           "tokens are revoked, the app's sessions end and the app is told; "
                           "the consent ledger records the withdrawal (channel `admin`).")
async def revoke_grant(ctx: CtxDep, actor: Writer, grant_id: str) -> Response:
    await operations.revoke_grant(ctx, grant_id, actor=actor)
    return Response(status_code=204)


class DeliveryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "m9Kq0bS8ZyWm2xR4", "kind": "backchannel_logout",
        "recipient": "Zt1q0bS8ZyWm2xR4aV7c9g", "status": "abandoned", "attempts": 20,
        "last_error": "HTTP 503", "created_at": 1795000000, "next_attempt_at": None,
        "abandoned_at": 1795005400}]})

    id: str
    kind: str = Field(examples=["backchannel_logout"])
    recipient: str = Field(description="the app's client id, or the upstream's URL")
    status: Literal["abandoned", "retrying"]
    attempts: int
    last_error: str | None
    created_at: int
    next_attempt_at: int | None
    abandoned_at: int | None


@router.get("/outbox/failed", summary="Deliveries that have not got through",
            response_model=list[DeliveryOut],
            description="Messages to apps and upstream providers abandoned after their "
                        "retries or still failing, oldest first.")
async def failed_deliveries(ctx: CtxDep, _: Reader,
                            kind: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    return await operations.failed_deliveries(ctx, kind)


@router.post("/outbox/{message_id}/retry", summary="Deliver a message again now",
             status_code=202, response_class=Response,
             description="A delivered message is never sent twice.")
async def retry_delivery(ctx: CtxDep, actor: Writer, message_id: str) -> Response:
    await operations.retry_delivery(ctx, message_id, actor=actor)
    return Response(status_code=202)


class KeyOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kid": "IfutmhXhH8TW2kM7", "alg": "ES256", "state": "active", "created_at": 1794000000,
        "retired_at": None, "published_until": None}]})

    kid: str
    alg: Literal["RS256", "ES256"]
    state: Literal["active", "next", "retired"]
    created_at: int
    retired_at: int | None
    published_until: int | None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"algs": ["ES256"]}]})

    algs: list[Literal["RS256", "ES256"]] | None = Field(
        default=None, description="the algorithms to rotate; all when absent")


class RotatedOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "active": ["Nq2kM7dtGWfV8Bqi", "IfutmhXhH8TW2kM7"]}]})

    active: list[str] = Field(description="the kids that now sign")


@router.get("/keys", summary="List the signing keys", response_model=list[KeyOut],
            description="Public facts only; private keys never leave the database.")
async def list_keys(ctx: CtxDep, _: Reader) -> Any:
    return await operations.signing_keys(ctx)


@router.post("/keys/rotate", summary="Rotate the signing keys", response_model=RotatedOut,
             description="The published next keys start signing, the current ones retire "
                         "(published until their tokens expire) and new next keys are "
                         "published. Every replica uses them within a second.")
async def rotate_keys(ctx: CtxDep, actor: Writer, body: RotateIn | None = None) -> Any:
    algs: list[str] | None = list(body.algs) if body is not None and body.algs else None
    return {"active": await operations.rotate_keys(ctx, algs, actor=actor)}


class PurposeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "marketing_email", "title": "Marketing e-mail",
        "description": "We send you offers and news by e-mail.",
        "data_categories": ["identity"], "legal_basis": "consent", "sale_or_share": False,
        "version": 3, "created_at": 1794999990, "updated_at": 1795000420}]})

    id: str
    title: str
    description: str
    data_categories: list[str]
    legal_basis: str
    sale_or_share: bool
    version: int
    created_at: int
    updated_at: int


class PurposeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "marketing_email", "title": "Marketing e-mail",
        "description": "We send you offers and news by e-mail.",
        "data_categories": ["identity"], "legal_basis": "consent", "sale_or_share": False}]})

    id: str = Field(max_length=64, examples=["marketing_email"])
    title: str = Field(max_length=200)
    description: str = Field(max_length=4000)
    data_categories: list[str] = Field(max_length=4, examples=[["identity"]])
    legal_basis: str = "consent"
    sale_or_share: bool = False


class PurposeChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "description": "We send you offers, news and surveys by e-mail."}]})

    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    data_categories: list[str] | None = Field(default=None, max_length=4)
    legal_basis: str | None = None
    sale_or_share: bool | None = None
    material: bool = Field(default=True, description=(
        "a material change raises the version: every app that uses the purpose asks again"))


class ClientPurposesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "required": ["order_updates"], "optional": ["marketing_email"]}]})

    required: list[str] = Field(default_factory=list, max_length=50)
    optional: list[str] = Field(default_factory=list, max_length=50)


@router.get("/purposes", summary="List purposes", response_model=list[PurposeOut],
            description="Every purpose with the version of its current wording.")
async def list_purposes(ctx: CtxDep, _: Reader) -> Any:
    return [purposes.view(row) for row in await purposes.list_purposes(ctx)]


@router.post("/purposes", summary="Define a purpose", status_code=201,
             response_model=PurposeOut,
             description="Why data is processed, in plain words, with its data categories "
                         "(identity, descriptive, attitudinal, behavioral) and legal basis; "
                         "version 1.")
async def create_purpose(ctx: CtxDep, actor: Writer, body: PurposeIn) -> Any:
    row = await purposes.create_purpose(
            ctx, purpose_id=body.id, title=body.title, description=body.description,
            data_categories=body.data_categories, legal_basis=body.legal_basis,
            sale_or_share=body.sale_or_share, actor=actor)
    return JSONResponse(purposes.view(row), status_code=201)


@router.patch("/purposes/{purpose_id}", summary="Change a purpose", response_model=PurposeOut,
              description="A material change (the default) raises the version, so the next "
                           "authorization of every app that uses it asks again.")
async def update_purpose(ctx: CtxDep, actor: Writer, purpose_id: str, body: PurposeChanges
                         ) -> Any:
    row = await purposes.update_purpose(
            ctx, purpose_id, title=body.title, description=body.description,
            data_categories=body.data_categories, legal_basis=body.legal_basis,
            sale_or_share=body.sale_or_share, material=body.material, actor=actor)
    return purposes.view(row)


@router.put("/clients/{client_id}/purposes", summary="Set the purposes a client asks for",
            status_code=204,
            description="Replaces the client's list: `required` purposes must be agreed to for "
                        "the app to be used, `optional` ones the customer may decline.")
async def set_client_purposes(ctx: CtxDep, actor: Writer, client_id: str,
                              body: ClientPurposesIn) -> Response:
    chosen = {**{p: False for p in body.optional}, **{p: True for p in body.required}}
    await purposes.set_client_purposes(ctx, client_id, chosen, actor=actor)
    return Response(status_code=204)


class LedgerVerified(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"entries": 1042, "problems": []}]})

    entries: int
    problems: list[dict[str, Any]] = Field(description="empty when every link holds")


@router.get("/ledger/verify", summary="Verify the consent ledger's hash chain",
            response_model=LedgerVerified,
            description="Recomputes every link; a problem names the entry where the chain "
                        "breaks (an edited, removed or inserted entry).")
async def verify_ledger(ctx: CtxDep, _: Reader) -> Any:
    count, problems = await ledger.verify(ctx)
    return {"entries": count, "problems": [problem.__dict__ for problem in problems]}


class LedgerLinkOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "seq": 1, "entry_id": "cr_9f2kq0bS8ZyWm2xR", "grant_id": "k3JqV0bS8ZyWm2xR",
        "client_id": "Zt1q0bS8ZyWm2xR4aV7c9g", "subject_ref": "5d1c...", "action": "grant",
        "channel": "web", "gpc": False, "created_at": 1794999995,
        "payload_digest": "9b71...", "prev_hash": "0000...", "entry_hash": "e3b0..."}]})

    seq: int
    entry_id: str
    grant_id: str
    client_id: str
    subject_ref: str = Field(description="a keyed digest of the customer's id, not the id")
    action: str
    channel: str
    gpc: bool
    created_at: int
    payload_digest: str
    prev_hash: str
    entry_hash: str


@router.get("/ledger", summary="The consent ledger's chain, for an audit",
            response_model=list[LedgerLinkOut],
            description="In order, `limit` at a time after `after_seq`: each entry's header, "
                        "payload digest and hashes, enough to recompute every link without "
                        "the payloads' personal data.")
async def ledger_chain(ctx: CtxDep, _: Reader,
                       after_seq: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return await ledger.chain_page(ctx, after_seq=after_seq, limit=limit)


@router.get("/ledger/{entry_id}/receipt", summary="One ledger entry as a consent receipt",
            description="Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 structure.")
async def ledger_receipt(ctx: CtxDep, _: Reader, entry_id: str) -> Any:
    async with ctx.db.transaction(read_only=True) as session:
        entry = await ledger.get_entry(session, entry_id[:64])
    if entry is None:
        raise NotFound(f"no ledger entry {entry_id[:64]}")
    return receipt(ctx, entry)


class UpstreamOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "alias": "google", "type": "google", "name": "Google", "enabled": True,
        "config": {"client_id": "1234.apps.googleusercontent.com",
                   "discovery_url": "https://accounts.google.com/.well-known/openid-configuration"}
    }]})

    alias: str
    type: str
    name: str
    enabled: bool
    config: dict[str, Any] = Field(description="the settings without the secrets")


@router.get("/upstreams", summary="List sign-in providers", response_model=list[UpstreamOut],
            description="Their settings; secrets stay encrypted in the database and are "
                        "never shown.")
async def list_upstreams(ctx: CtxDep, _: Reader) -> Any:
    return await providers.all_upstreams(ctx)


@router.put("/upstreams/{alias}", summary="Add or replace a sign-in provider",
            response_model=UpstreamOut,
            description="The body is the configuration `idp upstreams add` reads from its "
                        "file (federation.md), secrets included; the answer and the audit "
                        "log show it without them.")
async def save_upstream(ctx: CtxDep, actor: Writer, alias: str,
                        body: Annotated[dict[str, Any], Body()]) -> Any:
    try:
        config = UpstreamConfig.model_validate({**body, "alias": alias})
    except ValidationError as exc:
        # Never echo the input: it holds the upstream's secrets.
        fields = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
        raise InvalidInput(f"the configuration is not valid: {', '.join(fields)}") from None
    await providers.save_upstream(ctx, config, actor=actor)
    return next(u for u in await providers.all_upstreams(ctx) if u["alias"] == alias)
