"""Admin API: the profile schema (issue 16 item 1), and a customer's values set by an
operator (provenance `operator`)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from idp.routes.admin.common import Reader, Writer, new_router
from idp.services.profile import schema, values
from idp.web.deps import CtxDep

router = new_router()

EXAMPLE: dict[str, Any] = {
    "name": "loyalty_tier", "type": "enum", "title": "Loyalty tier",
    "description": "Your level in our rewards programme.", "data_type": "behavioral",
    "sensitive": False, "purposes": ["loyalty"], "customer_editable": False,
    "scope": "loyalty", "rules": {"values": ["bronze", "silver", "gold"]}, "standard": False,
    "described": True, "created_at": 1795000000, "updated_at": 1795000000}


class AttributeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    name: str
    type: str = Field(description="string, integer, number, boolean, date, enum, url, phone, "
                                  "email (address: the standard claim)")
    title: str
    description: str
    data_type: str = Field(description="identity, descriptive, attitudinal or behavioral")
    sensitive: bool = Field(description="CPRA sensitive personal information: while the "
                                        "customer limits its use, it serves only purposes "
                                        "whose legal basis is contract")
    purposes: list[str] = Field(description="the purposes it may serve: an app receives it "
                                            "only for one the customer granted that app")
    customer_editable: bool
    scope: str | None = Field(description="the operator scope under which a custom attribute "
                                          "is released as a claim (ID token, UserInfo)")
    rules: dict[str, Any] = Field(description="max_length, pattern, minimum, maximum, values")
    standard: bool = Field(description="a standard OIDC claim (released by its standard scope)")
    described: bool = Field(description="false: a standard claim with its defaults")
    created_at: int | None
    updated_at: int | None


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    data_type: str | None = None
    sensitive: bool | None = None
    purposes: list[str] | None = Field(default=None, max_length=20)
    customer_editable: bool | None = None
    scope: str | None = Field(default=None, max_length=64)
    max_length: int | None = None
    pattern: str | None = Field(default=None, max_length=200)
    minimum: float | None = None
    maximum: float | None = None
    values: list[str] | None = Field(default=None, max_length=100)


class AttributeIn(_Fields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "loyalty_tier", "type": "enum", "title": "Loyalty tier",
        "description": "Your level in our rewards programme.", "data_type": "behavioral",
        "purposes": ["loyalty"], "scope": "loyalty", "values": ["bronze", "silver", "gold"]}]})

    name: str = Field(max_length=64, examples=["loyalty_tier"])
    type: str | None = Field(default=None, description="fixed for a standard claim")


class AttributeChanges(_Fields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "purposes": ["loyalty", "personalisation"], "sensitive": False}]})


class ValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "value": "gold"}]})

    value: Any = Field(description="checked against the attribute's type and rules; null "
                                   "removes the value")


@router.get("/profile/attributes", summary="List the profile schema",
            response_model=list[AttributeOut],
            description="The described attributes, and the standard OIDC claims not described "
                        "yet with their defaults.")
async def list_attributes(ctx: CtxDep, _: Reader) -> Any:
    return await schema.list_attributes(ctx)


@router.post("/profile/attributes", summary="Describe an attribute", status_code=201,
             response_model=AttributeOut,
             description="A custom attribute (it serves at least one purpose), or the first "
                         "description of a standard claim (its type stays; it is released by "
                         "its standard scope, so it takes no scope).")
async def describe_attribute(ctx: CtxDep, actor: Writer, body: AttributeIn) -> Any:
    fields = body.model_dump(exclude={"name"}, exclude_none=True)
    return JSONResponse(await schema.describe_attribute(ctx, body.name, fields, actor=actor),
                        status_code=201)


@router.patch("/profile/attributes/{name}", summary="Change an attribute's description",
              response_model=AttributeOut,
              description="Fields sent replace the current ones (null clears scope or a rule); "
                          "name and type stay. Stored values are not checked again.")
async def change_attribute(ctx: CtxDep, actor: Writer, name: str, body: AttributeChanges
                           ) -> Any:
    return await schema.change_attribute(ctx, name, body.model_dump(exclude_unset=True),
                                         actor=actor)


class Removed(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"values_removed": 1204}]})

    values_removed: int = Field(description="stored values of the attribute that went with "
                                            "it (a standard claim keeps its values)")


@router.delete("/profile/attributes/{name}", summary="Remove an attribute",
               response_model=Removed,
               description="A custom attribute goes with every stored value of it; a standard "
                           "claim returns to its defaults.")
async def remove_attribute(ctx: CtxDep, actor: Writer, name: str) -> Any:
    return {"values_removed": await schema.remove_attribute(ctx, name, actor=actor)}


@router.put("/users/{user_id}/profile/{name}", summary="Set a customer's value",
            status_code=204, response_class=Response,
            description="On the customer's request (support): the value is checked against "
                        "the attribute and kept with `operator` as its source; null removes "
                        "it. Audited without the value.")
async def set_value(ctx: CtxDep, actor: Writer, user_id: str, name: str, body: ValueIn
                    ) -> Response:
    await values.set_by_operator(ctx, user_id, name, body.value, actor=actor)
    return Response(status_code=204)
