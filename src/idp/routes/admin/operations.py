"""Admin API: what the service runs on: grants, the outbox, signing keys, upstream providers
and the audit log of every operator change."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from idp.federation.config import UpstreamConfig
from idp.routes.admin.common import Reader, Writer, new_router
from idp.services import InvalidInput
from idp.services.accounts import audit, operations
from idp.services.upstream import providers
from idp.web.deps import CtxDep

router = new_router()


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
    return [asdict(grant) for grant in found]


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


@router.get("/audit-events", summary="The admin audit log", response_model=list[AuditEventOut],
            description="Newest first. Page on with `after` set to the last id of a page.")
async def audit_events(ctx: CtxDep, _: Reader,
                       target_id: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = 50,
                       after: Annotated[str | None, Query(max_length=32)] = None) -> Any:
    events = await audit.events(ctx, target_id=target_id, limit=limit, after=after)
    return [asdict(event) for event in events]


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
