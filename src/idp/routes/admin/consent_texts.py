"""Admin API: consent texts per language (issue 15 item 4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, Writer, new_router
from idp.services.consent import texts
from idp.web.deps import CtxDep

router = new_router()
Kind = Literal["purpose", "scope", "category"]


class ConsentTextOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "kind": "purpose", "key": "marketing_email", "locale": "ar",
        "title": "عروض بالبريد الإلكتروني",
        "description": "نرسل إليك عروضًا وأخبارًا بالبريد الإلكتروني.",
        "purpose_version": 3, "version": 2, "updated_at": 1795000420}]})

    kind: str
    key: str
    locale: str
    title: str | None
    description: str | None
    purpose_version: int | None = Field(description=(
        "a purpose's: the version these words say; after a material change of the purpose "
        "they are not shown (the default language's words are) until set again"))
    version: int = Field(description="rises with every change; receipts name the one shown")
    updated_at: int


class ConsentTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "عروض بالبريد الإلكتروني",
        "description": "نرسل إليك عروضًا وأخبارًا بالبريد الإلكتروني."}]})

    title: str | None = Field(default=None, max_length=200,
                              description="a purpose's or a data category's")
    description: str | None = Field(default=None, max_length=4000,
                                    description="a purpose's or a scope's")


@router.get("/consent-texts", summary="List consent texts per language",
            response_model=list[ConsentTextOut],
            description="The operators' words for purposes (in languages other than the "
                        "default), scopes and data categories.")
async def list_consent_texts(ctx: CtxDep, _: Reader,
                             kind: Annotated[Kind | None, Query()] = None,
                             key: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    return await texts.list_texts(ctx, kind, key)


@router.put("/consent-texts/{kind}/{key}/{locale}", summary="Set a consent text in a language",
            response_model=ConsentTextOut,
            description="A purpose's title and description in a language other than the "
                        "default (its own are the default's: PATCH /purposes), a scope's "
                        "description, or a data category's title, in place of the built-in "
                        "words. Shown on the consent page and in the account center to "
                        "customers in that language; the consent ledger records the words, "
                        "their language and version.")
async def set_consent_text(ctx: CtxDep, actor: Writer, kind: Kind, key: str, locale: str,
                           body: ConsentTextIn) -> Any:
    row = await texts.set_text(ctx, kind, key[:64], locale[:35], title=body.title,
                               description=body.description, actor=actor)
    return texts.text_view(row)


@router.delete("/consent-texts/{kind}/{key}/{locale}", summary="Remove a consent text",
               status_code=204,
               description="The built-in words (or the default language's) are shown again.")
async def remove_consent_text(ctx: CtxDep, actor: Writer, kind: Kind, key: str, locale: str
                              ) -> Response:
    await texts.remove_text(ctx, kind, key[:64], locale[:35], actor=actor)
    return Response(status_code=204)
