"""Operator use cases for the profile schema (the admin API and `idp profile` call these):
describe an attribute, change its description, list them, remove one. Every change lands in
the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.profile import (
    STANDARD_ATTRIBUTES,
    AttributeDef,
    DefinitionProblem,
    check_definition,
)
from idp.services import InvalidInput, NotFound
from idp.services.context import Context
from idp.services.profile import cache
from idp.services.profile.values import remove_everywhere
from idp.store import audit
from idp.store import profile as store
from idp.store.models import ProfileAttribute

# What a description may set; `name` and `type` are fixed once described.
FIELDS = ("title", "description", "data_type", "sensitive", "purposes", "customer_editable",
          "scope", "max_length", "pattern", "minimum", "maximum", "values")


def view(defn: AttributeDef, row: ProfileAttribute | None = None) -> dict[str, Any]:
    return {
        "name": defn.name, "type": defn.type, "title": defn.title,
        "description": defn.description, "data_type": defn.data_type,
        "sensitive": defn.sensitive, "purposes": list(defn.purposes),
        "customer_editable": defn.customer_editable, "scope": defn.scope,
        "rules": defn.rules(), "standard": defn.standard, "described": row is not None,
        "created_at": row.created_at if row is not None else None,
        "updated_at": row.updated_at if row is not None else None,
    }


def definition(name: str, values: Mapping[str, Any]) -> AttributeDef:
    """An AttributeDef from the admin API's or the CLI's fields (unknown ones refused)."""
    unknown = set(values) - {*FIELDS, "type", "name"}
    if unknown:
        raise InvalidInput(f"unknown field {sorted(unknown)[0]}")
    base = STANDARD_ATTRIBUTES.get(name) or AttributeDef(name, "", "", "")
    fields = {k: v for k, v in values.items() if k in FIELDS and v is not None}
    fields["purposes"] = tuple(fields.get("purposes", base.purposes))
    fields["values"] = tuple(fields.get("values", base.values))
    return replace(base, name=name, type=str(values.get("type") or base.type), **fields)


async def list_attributes(ctx: Context) -> list[dict[str, Any]]:
    """Every attribute the profile knows: the operator's descriptions, and the standard
    claims not described yet with their defaults."""
    async with ctx.db.transaction(read_only=True) as session:
        rows = {row.name: row for row in await store.attribute_rows(session)}
    found = [view(store.to_def(row), row) for row in rows.values()]
    found += [view(d) for name, d in STANDARD_ATTRIBUTES.items() if name not in rows]
    return sorted(found, key=lambda item: (not item["standard"], item["name"]))


async def _checked(session: AsyncSession, defn: AttributeDef) -> AttributeDef:
    try:
        defn = check_definition(defn)
    except DefinitionProblem as problem:
        raise InvalidInput(str(problem)) from None
    missing = set(defn.purposes) - await store.existing_purposes(session, defn.purposes)
    if missing:
        raise InvalidInput(f"purposes: no purpose {sorted(missing)[0]}")
    return defn


async def describe_attribute(ctx: Context, name: str, values: Mapping[str, Any], *,
                             actor: str = "cli") -> dict[str, Any]:
    """A new attribute, or the first description of a standard claim."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        if await store.get_attribute(session, name) is not None:
            raise InvalidInput(f"attribute {name} is described already; change it instead")
        defn = await _checked(session, definition(name, values))
        row = ProfileAttribute(name=defn.name, created_at=now, updated_at=now)
        store.fill(row, defn)
        session.add(row)
        audit.record(session, now, actor, "profile.attribute.create", "profile_attribute",
                     name, None, view(defn, row))
        result = view(defn, row)
    cache.forget(ctx)
    return result


async def change_attribute(ctx: Context, name: str, changes: Mapping[str, Any], *,
                           actor: str = "cli") -> dict[str, Any]:
    """Change a description; its type stays. Values already stored are not checked again
    against new validation rules."""
    if "type" in changes or "name" in changes:
        raise InvalidInput("an attribute's name and type stay; describe a new attribute")
    async with ctx.db.transaction() as session:
        row = await store.get_attribute(session, name)
        if row is None:
            raise NotFound(f"no attribute {name}")
        current = store.to_def(row)
        merged = {**asdict(current), **{k: v for k, v in changes.items()}}
        merged = {k: v for k, v in merged.items() if k in FIELDS}
        defn = await _checked(session, definition(name, {**merged, "type": current.type}))
        before = view(current, row)
        store.fill(row, defn)
        row.updated_at = ctx.now()
        audit.record(session, row.updated_at, actor, "profile.attribute.update",
                     "profile_attribute", name, before, view(defn, row))
        result = view(defn, row)
    cache.forget(ctx)
    return result


async def remove_attribute(ctx: Context, name: str, *, actor: str = "cli") -> int:
    """Remove a description. A custom attribute goes with every value of it (how many is
    returned); a standard claim returns to its defaults and keeps its values."""
    async with ctx.db.transaction() as session:
        row = await store.get_attribute(session, name)
        if row is None:
            raise NotFound(f"no attribute {name}")
        defn = store.to_def(row)
        removed = 0 if name in STANDARD_ATTRIBUTES else await remove_everywhere(
            ctx, session, name)
        await session.delete(row)
        audit.record(session, ctx.now(), actor, "profile.attribute.delete",
                     "profile_attribute", name, view(defn, row), {"values_removed": removed})
    cache.forget(ctx)
    return removed
