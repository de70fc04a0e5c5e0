"""Stored values and where they came from (issue 16 item 1). Every write goes through `apply`:
the account's read copy (`users.profile`, what tokens and UserInfo read) and, for each value
set, its provenance, in the caller's unit of work. The account center's use cases (see each
value with its source, correct or remove what is editable) and the operator's are here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.locales import gettext
from idp.protocol.profile import AttributeDef, ProfileSchema
from idp.protocol.profile_values import ValueProblem, check_value, parse_text, text_of
from idp.services import InvalidInput, NotFound
from idp.services.context import Context
from idp.services.profile import cache
from idp.store import audit
from idp.store import clients as client_store
from idp.store import profile as store
from idp.store.models import User
from idp.store.profile import Source

CUSTOMER = Source("customer")


async def locked_user(session: AsyncSession, user_id: str) -> User | None:
    """The account's row, locked for a read-modify-write of its profile (two writes at once
    take turns instead of one losing the other's value; SQLite's writers take turns anyway)."""
    return await session.scalar(select(User).where(User.id == user_id).with_for_update())


async def apply(session: AsyncSession, user: User, changes: Mapping[str, Any], source: Source,
                now: int) -> list[str]:
    """Set values (None removes one); only what changes is touched, and each value set gets
    `source` as its provenance. Returns the names that changed."""
    profile = dict(user.profile or {})
    written, removed = [], []
    for name, value in changes.items():
        if value is None:
            if profile.pop(name, None) is not None:
                removed.append(name)
        elif profile.get(name) != value:
            profile[name] = value
            written.append(name)
    if written or removed:
        user.profile = profile
        user.updated_at = now
    await store.set_provenance(session, user.id, written, source, now)
    await store.forget_provenance(session, user.id,
                                  [n for n, v in changes.items() if v is None])
    return written + removed


def definition_of(schema: ProfileSchema, name: str) -> AttributeDef:
    """The attribute's definition; a value stored under a name nobody described (an
    upstream mapping's) shows as read-only text."""
    return schema.attributes.get(name) or AttributeDef(
        name, "string", name.replace("_", " ").capitalize(), "descriptive")


def shown(defn: AttributeDef) -> AttributeDef:
    """The definition as a page shows it: a standard claim's title in the customer's
    language (an operator's titles are shown as written)."""
    return replace(defn, title=gettext(defn.title)) if defn.standard else defn


@dataclass(frozen=True)
class Entry:
    """One attribute as the account center shows it."""

    defn: AttributeDef
    value: Any
    text: str
    source: str | None  # None: no record (set before provenance was kept, by another path)
    source_name: str | None  # the app's name, the provider, the operator
    updated_at: int | None
    purposes: tuple[str, ...] = ()


async def entries(ctx: Context, user_id: str) -> list[Entry]:
    """Every value the account holds, with where it came from, and every attribute the
    customer may fill in."""
    async with ctx.db.transaction(read_only=True) as session:
        user = await session.get(User, user_id)
        if user is None:
            raise errors.LoginRequired(redirectable=False)
        schema = await cache.schema_in(session)
        provenance = await store.provenance_of(session, user_id)
        apps = {row.source_id for row in provenance.values()
                if row.source_id and row.source in ("app", "customer")}
        names = {app: client.name for app in apps
                 if (client := await client_store.get_client(session, app)) is not None}
    profile = user.profile or {}
    listed = [n for n in profile] + [d.name for d in schema.attributes.values()
                                     if d.customer_editable and d.name not in profile]
    found = []
    for name in listed:
        defn, row = definition_of(schema, name), provenance.get(name)
        source_name = None
        if row is not None and row.source_id:
            source_name = names.get(row.source_id) or (
                row.source_id.capitalize() if row.source == "upstream" else row.source_id)
        found.append(Entry(shown(defn), profile.get(name), text_of(profile.get(name)),
                           row.source if row else None, source_name,
                           row.updated_at if row else None,
                           tuple(row.purposes) if row else ()))
    return sorted(found, key=lambda e: (e.value is None, not e.defn.standard, e.defn.title))


async def save_by_customer(ctx: Context, user_id: str, form: Mapping[str, str]
                           ) -> dict[str, str]:
    """The customer corrected their profile: each editable attribute in the form whose text
    changed is checked again and saved (an emptied one is removed). Nothing is saved when
    any is refused; returns the problems by attribute (empty: saved)."""
    async with ctx.db.transaction() as session:
        user = await locked_user(session, user_id)
        if user is None:
            raise errors.LoginRequired(redirectable=False)
        schema = await cache.schema_in(session)
        changes: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, text in form.items():
            defn = schema.attributes.get(name)
            if defn is None or not defn.customer_editable or \
                    text.strip() == text_of((user.profile or {}).get(name)):
                continue
            try:
                changes[name] = parse_text(defn, text)
            except ValueProblem as problem:
                problems[name] = problem.words(gettext)
        if problems:
            return problems
        await apply(session, user, changes, CUSTOMER, ctx.now())
    return {}


async def remove_by_customer(ctx: Context, user_id: str, name: str) -> None:
    async with ctx.db.transaction() as session:
        user = await locked_user(session, user_id)
        schema = await cache.schema_in(session)
        defn = schema.attributes.get(name)
        if user is None or defn is None or not defn.customer_editable:
            raise errors.InvalidRequest(
                gettext("This part of your profile cannot be removed here"),
                redirectable=False)
        await apply(session, user, {name: None}, CUSTOMER, ctx.now())


async def set_by_operator(ctx: Context, user_id: str, name: str, value: Any, *,
                          actor: str = "cli") -> None:
    """An operator sets (or with None removes) one value of an account, checked against
    its definition; audited without the value (only that it was set or removed)."""
    async with ctx.db.transaction() as session:
        user = await locked_user(session, user_id)
        if user is None:
            raise NotFound(f"no account {user_id}")
        defn = (await cache.schema_in(session)).attributes.get(name)
        if defn is None:
            raise InvalidInput(f"no attribute {name}")
        try:
            checked = None if value is None else check_value(defn, value)
        except ValueProblem as problem:
            raise InvalidInput(f"{name}: {problem}") from None
        now = ctx.now()
        await apply(session, user, {name: checked}, Source("operator", actor), now)
        audit.record(session, now, actor, "profile.value." + ("remove" if value is None
                                                              else "set"),
                     "account", user_id, None, {"attribute": name})


async def remove_everywhere(ctx: Context, session: AsyncSession, name: str) -> int:
    """Every stored value of an attribute whose description the operator removed."""
    removed = 0
    for user_id in await store.holders_of(session, name):
        user = await locked_user(session, user_id)
        if user is not None and await apply(session, user, {name: None}, CUSTOMER,
                                            ctx.now()):
            removed += 1
    return removed
