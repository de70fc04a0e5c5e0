"""Admin API: a customer's CCPA/CPRA choices, read and set by an operator on the customer's
request (a call to the support line, a letter). The same use case as the account center's;
a change is in the audit log, the consent ledger and the events apps receive."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp.protocol.privacy import SET_BY_OPERATOR
from idp.routes.admin.common import Reader, Writer, new_router
from idp.services.consent import privacy_choices
from idp.web.deps import CtxDep

router = new_router()

SetBy = Literal["account", "gpc", "operator"]
EXAMPLE: dict[str, Any] = {"do_not_sell_or_share": True, "do_not_sell_set_by": "gpc",
           "do_not_sell_set_at": 1796000000, "limit_sensitive_use": False,
           "limit_sensitive_set_by": None, "limit_sensitive_set_at": None,
           "gpc_override": False, "change_id": None}


class PrivacyChoicesOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    do_not_sell_or_share: bool = Field(description="Do not sell or share my personal "
                                                   "information (Cal. Civ. Code §1798.120)")
    do_not_sell_set_by: SetBy | None = Field(description="How it was last set: the customer "
                                                         "in the account center, a Global "
                                                         "Privacy Control signal, or an "
                                                         "operator; null: never chosen")
    do_not_sell_set_at: int | None = Field(description="When (seconds since the epoch)")
    limit_sensitive_use: bool = Field(description="Limit the use of my sensitive personal "
                                                  "information (§1798.121)")
    limit_sensitive_set_by: SetBy | None
    limit_sensitive_set_at: int | None
    gpc_override: bool = Field(description="The customer allowed sale and sharing while "
                                           "their browser sent GPC: the signal no longer "
                                           "turns it back on (Cal. Code Regs. tit. 11 "
                                           "§7025(c)(3))")
    change_id: str | None = Field(default=None, description="On a change: the id its ledger "
                                                            "entry and app events share")


class PrivacyChoicesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "do_not_sell_or_share": True, "limit_sensitive_use": False}]})

    do_not_sell_or_share: bool
    limit_sensitive_use: bool


@router.get("/users/{user_id}/privacy-choices", summary="Read a customer's privacy choices",
            response_model=PrivacyChoicesOut,
            description="The customer's CCPA/CPRA choices, with how and when each was last "
                        "set. An account that never chose reads both off, set by null.")
async def read_privacy_choices(ctx: CtxDep, _: Reader, user_id: str) -> Any:
    return asdict(await privacy_choices.read_choices(ctx, user_id[:64]))


@router.put("/users/{user_id}/privacy-choices", summary="Set a customer's privacy choices",
            response_model=PrivacyChoicesOut,
            description="On the customer's request: both choices, recorded as set by the "
                        "operator. A change appends the consent ledger, is in the audit log, "
                        "and every connected app gets a consent-change event with the new "
                        "`consent` claim; tokens issued from now on carry it. Setting what is "
                        "already set changes nothing (`change_id` null).")
async def set_privacy_choices(ctx: CtxDep, actor: Writer, user_id: str,
                              body: PrivacyChoicesIn) -> Any:
    changed = await privacy_choices.set_choices(
        ctx, user_id[:64], do_not_sell_or_share=body.do_not_sell_or_share,
        limit_sensitive_use=body.limit_sensitive_use, set_by=SET_BY_OPERATOR, actor=actor)
    return {**asdict(changed.view), "change_id": changed.change_id}
