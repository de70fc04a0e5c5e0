"""Admin API: customer accounts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, Writer, new_router
from idp.services.accounts import operators
from idp.web.deps import CtxDep
from idp.web.responses import NO_STORE

router = new_router()


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
    return [asdict(account) for account in found]


@router.get("/users/{user_id}", summary="Read a customer account", response_model=AccountOut,
            description="The account's standing; its profile and history are in the export.")
async def read_user(ctx: CtxDep, _: Reader, user_id: str) -> Any:
    return asdict(await operators.get_account(ctx, user_id))


@router.post("/users/{user_id}/disable", summary="Disable a customer account",
             response_model=AccountOut,
             description="No sign-in of any kind; every session ends (apps get back-channel "
                         "logout) and every token is revoked at once.")
async def disable_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return asdict(await operators.set_disabled(ctx, user_id, True, actor=actor))


@router.post("/users/{user_id}/enable", summary="Enable a customer account again",
             response_model=AccountOut,
             description="The customer may sign in again; nothing revoked comes back.")
async def enable_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return asdict(await operators.set_disabled(ctx, user_id, False,
                                                              actor=actor))


@router.post("/users/{user_id}/sign-out", summary="Sign a customer out everywhere",
             response_model=SignedOut,
             description="Every session ends (apps get back-channel logout) and every refresh "
                         "token is revoked, offline ones included.")
async def sign_out_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return {"sessions_ended": await operators.sign_out_everywhere(ctx, user_id,
                                                                      actor=actor)}


class FactorsReset(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "totp_removed": True, "recovery_codes_removed": 7, "passkeys_removed": 1,
        "sessions_ended": 2}]})

    totp_removed: bool = Field(description="an authenticator app was set up and is now gone")
    recovery_codes_removed: int = Field(description="unused recovery codes that stopped working")
    passkeys_removed: int = Field(description="passkeys removed from the account")
    sessions_ended: int


@router.post("/users/{user_id}/second-factors/reset", summary="Reset a customer's second factors",
             response_model=FactorsReset,
             description="For a customer who lost the authenticator app and the recovery codes, "
                         "once support has checked who they are: the authenticator and every "
                         "recovery code are removed, every session ends (apps get back-channel "
                         "logout) and every refresh token is revoked. The customer signs in "
                         "with the password and sets two-step sign-in up again. Recorded in the "
                         "audit log and in the account's security events.")
async def reset_second_factors(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return await operators.reset_second_factors(ctx, user_id, actor=actor)


@router.delete("/users/{user_id}", summary="Delete a customer account", response_model=Deleted,
               description="Erasure (GDPR Art. 17): the account and its personal data; apps "
                           "are told, upstream providers' grants revoked; the consent "
                           "ledger keeps its chain with the personal payloads erased.")
async def delete_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return await operators.delete(ctx, user_id, actor=actor)


EXPORT_EXAMPLE = {
    "format": "idp-account-export/1", "exported_at": "2026-12-05T10:00:00Z",
    "issuer": "https://login.example.com",
    "account": {"sub": "8Qe2xR4aV7c9gZt1q0bS8Z", "email": "alice@example.com",
                "email_verified": True, "created_at": "2026-11-01T09:12:00Z",
                "updated_at": "2026-12-01T18:40:00Z", "disabled_at": None,
                "profile": {"name": {"value": "Alice Example"}}},
    "sign_in_methods": {"password": True, "identities": [],
                        "two_step": {"authenticator_app": True,
                                     "since": "2026-11-02T08:00:00Z",
                                     "recovery_codes_left": 9}},
    "apps": [], "consent_history": [], "sessions": [], "security_events": [], "pictures": [],
}


@router.get("/users/{user_id}/export", summary="Export a customer's data",
            description="What the customer would download from the account center "
                        "(GDPR Art. 15 and 20). The export itself is in the audit log.",
            responses={200: {"description": "The account's data (shortened here)", "content": {
                "application/json": {"example": EXPORT_EXAMPLE}}}})
async def export_user(ctx: CtxDep, actor: Writer, user_id: str) -> Any:
    return JSONResponse(await operators.export(ctx, user_id, actor=actor),
                            headers=NO_STORE)
