"""Admin API: purposes and the consent ledger."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, Writer, new_router
from idp.services import NotFound
from idp.services.consent import ledger, purposes
from idp.services.consent.receipts import receipt
from idp.web.deps import CtxDep

router = new_router()


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
    retention_days: int | None = Field(default=None, description=(
        "values collected only for this purpose are purged this many days after they were "
        "set; null: kept while the purpose is granted"))
    text_version: int = Field(default=1, description=(
        "rises with every change of the title or description, material or not; their words "
        "in other languages: /consent-texts"))
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
    retention_days: int | None = Field(default=None, ge=1, le=36_500, description=(
        "purge values collected only for this purpose this many days after they were set"))


class PurposeChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "description": "We send you offers, news and surveys by e-mail."}]})

    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    data_categories: list[str] | None = Field(default=None, max_length=4)
    legal_basis: str | None = None
    sale_or_share: bool | None = None
    retention_days: int | None = Field(default=None, ge=1, le=36_500, description=(
        "days values collected only for this purpose are kept; null clears it"))
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
            sale_or_share=body.sale_or_share, retention_days=body.retention_days,
            actor=actor)
    return JSONResponse(purposes.view(row), status_code=201)


@router.patch("/purposes/{purpose_id}", summary="Change a purpose", response_model=PurposeOut,
              description="A material change (the default) raises the version, so the next "
                           "authorization of every app that uses it asks again.")
async def update_purpose(ctx: CtxDep, actor: Writer, purpose_id: str, body: PurposeChanges
                         ) -> Any:
    row = await purposes.update_purpose(
            ctx, purpose_id, title=body.title, description=body.description,
            data_categories=body.data_categories, legal_basis=body.legal_basis,
            sale_or_share=body.sale_or_share, material=body.material, actor=actor,
            retention_days=body.retention_days if "retention_days" in body.model_fields_set
            else ...)
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
    return {"entries": count, "problems": [asdict(problem) for problem in problems]}


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


RECEIPT_EXAMPLE = {
    "version": "KI-CR-v1.1.0", "jurisdiction": "EU", "consentTimestamp": 1794999995,
    "collectionMethod": "consent page", "consentReceiptID": "Jm2oQ1bW6cT3vN8x",
    "language": "en", "piiPrincipalId": "sub:4f1c…",
    "piiControllers": [{"piiController": "Example Brand", "contact": "privacy@example.com",
                        "piiControllerUrl": "https://login.example.com"}],
    "policyUrl": "https://example.com/privacy",
    "services": [{"service": "Web shop", "serviceId": "Zt1q0bS8ZxR4aV7c", "scopes": [
        "openid", "email"], "purposes": [{
            "purpose": "Offers by email", "purposeId": "marketing_email", "purposeVersion": 3,
            "purposeDescription": "We email you offers we think you will like.",
            "purposeCategory": ["identity"], "consentType": "EXPLICIT",
            "piiCategory": ["identity"], "primaryPurpose": False,
            "termination": "Until withdrawn in the account center",
            "thirdPartyDisclosure": False, "consentGiven": True, "purposeLanguage": "en",
            "purposeTextVersion": 1, "purposeTextDigest": "3f0c…"}]}],
    "sensitive": False, "spiCat": [],
    "event": {"type": "given", "channel": "web", "gpc": False, "grantId": "k3JpX0aQ9"},
    "proof": {"seq": 42, "payloadDigest": "b5b0…", "prevHash": "0e9d…", "entryHash": "7a1c…",
              "payloadErased": False},
}


@router.get("/ledger/{entry_id}/receipt", summary="One ledger entry as a consent receipt",
            description="Kantara Consent Receipt v1.1 / ISO/IEC TS 27560 structure.",
            responses={200: {"description": "The receipt", "content": {
                "application/json": {"example": RECEIPT_EXAMPLE}}}})
async def ledger_receipt(ctx: CtxDep, _: Reader, entry_id: str) -> Any:
    async with ctx.db.transaction(read_only=True) as session:
        entry = await ledger.get_entry(session, entry_id[:64])
    if entry is None:
        raise NotFound(f"no ledger entry {entry_id[:64]}")
    return receipt(ctx, entry)
