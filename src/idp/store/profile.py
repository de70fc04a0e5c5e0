"""The profile schema, the provenance of stored values, and the access log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.profile import STANDARD_ATTRIBUTES, AttributeDef
from idp.store.models import (
    ProfileAttribute,
    ProfileProvenance,
    ProfileRelease,
    Purpose,
)
from idp.store.prepared import Connection, Prepared, dialect_of

# --- the schema ---------------------------------------------------------------------------


def to_def(row: ProfileAttribute) -> AttributeDef:
    rules: dict[str, Any] = row.rules or {}
    return AttributeDef(
        name=row.name, type=row.type, title=row.title, data_type=row.data_type,
        description=row.description, sensitive=row.sensitive, purposes=tuple(row.purposes),
        customer_editable=row.customer_editable, scope=row.scope,
        max_length=rules.get("max_length"), pattern=rules.get("pattern"),
        minimum=rules.get("minimum"), maximum=rules.get("maximum"),
        values=tuple(rules.get("values") or ()), standard=row.name in STANDARD_ATTRIBUTES)


def fill(row: ProfileAttribute, defn: AttributeDef) -> None:
    row.type, row.title, row.description = defn.type, defn.title, defn.description
    row.data_type, row.sensitive = defn.data_type, defn.sensitive
    row.purposes, row.customer_editable = list(defn.purposes), defn.customer_editable
    row.scope, row.rules = defn.scope, defn.rules()


async def described(session: AsyncSession) -> list[AttributeDef]:
    rows = await session.scalars(select(ProfileAttribute).order_by(ProfileAttribute.name))
    return [to_def(row) for row in rows]


async def attribute_rows(session: AsyncSession) -> list[ProfileAttribute]:
    return list(await session.scalars(select(ProfileAttribute).order_by(ProfileAttribute.name)))


async def get_attribute(session: AsyncSession, name: str) -> ProfileAttribute | None:
    return await session.get(ProfileAttribute, name)


async def purpose_terms(session: AsyncSession) -> dict[str, tuple[str, int | None]]:
    """Each purpose's legal basis and retention period in days."""
    rows = await session.execute(select(Purpose.id, Purpose.legal_basis,
                                        Purpose.retention_days))
    return {str(pid): (str(basis), days) for pid, basis, days in rows}


async def existing_purposes(session: AsyncSession, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    return set(await session.scalars(select(Purpose.id).where(Purpose.id.in_(wanted))))


# --- provenance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a value comes from: its kind, who (the upstream's alias, the app's client_id,
    the operator, or the app whose consent page the customer typed it on) and the purposes
    it is collected for."""

    kind: str  # customer | upstream | app | operator | imported
    by: str | None = None
    purposes: tuple[str, ...] = ()


_PROVENANCE_OF = Prepared(select(*ProfileProvenance.__table__.c).where(
    ProfileProvenance.user_id == bindparam("b_user_id")))


async def provenance_of(connection: Connection, user_id: str
                        ) -> dict[str, ProfileProvenance]:
    rows = await _PROVENANCE_OF.all(connection, {"b_user_id": user_id})
    return {row["name"]: ProfileProvenance(**row) for row in rows}


async def set_provenance(session: AsyncSession, user_id: str, names: Iterable[str],
                         source: Source, now: int) -> None:
    for name in names:
        row = await session.get(ProfileProvenance, (user_id, name))
        if row is None:
            row = ProfileProvenance(user_id=user_id, name=name)
            session.add(row)
        row.source, row.source_id = source.kind, source.by
        row.purposes = list(source.purposes)
        row.purpose_bound = bool(source.purposes)
        row.updated_at = now


async def forget_provenance(session: AsyncSession, user_id: str, names: Sequence[str]
                            ) -> None:
    if names:
        await session.execute(delete(ProfileProvenance).where(
            ProfileProvenance.user_id == user_id, ProfileProvenance.name.in_(list(names))))


async def holders_of(session: AsyncSession, name: str) -> list[str]:
    """Accounts with a value of this attribute on record."""
    return list(await session.scalars(select(ProfileProvenance.user_id).where(
        ProfileProvenance.name == name)))


async def purpose_bound(session: AsyncSession, after_user: str, limit: int
                        ) -> list[ProfileProvenance]:
    """Values collected for purposes, a batch of accounts at a time (retention)."""
    users = select(ProfileProvenance.user_id).where(
        ProfileProvenance.purpose_bound.is_(True), ProfileProvenance.user_id > after_user
    ).group_by(ProfileProvenance.user_id).order_by(ProfileProvenance.user_id).limit(limit)
    return list(await session.scalars(select(ProfileProvenance).where(
        ProfileProvenance.purpose_bound.is_(True),
        ProfileProvenance.user_id.in_(users.scalar_subquery())).order_by(
        ProfileProvenance.user_id, ProfileProvenance.name)))


# --- the access log --------------------------------------------------------------------------


async def add_releases(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One statement; a release already on record for its day stays as it is."""
    insert = postgresql_insert if dialect_of(session) == "postgresql" else sqlite_insert
    await session.execute(insert(ProfileRelease).values(rows).on_conflict_do_nothing())


async def releases_of(session: AsyncSession, user_id: str, since_day: int
                      ) -> list[ProfileRelease]:
    return list(await session.scalars(select(ProfileRelease).where(
        ProfileRelease.user_id == user_id, ProfileRelease.day >= since_day).order_by(
        ProfileRelease.day.desc(), ProfileRelease.client_id, ProfileRelease.attribute,
        ProfileRelease.via)))


async def purge_releases(session: AsyncSession, before_day: int) -> None:
    await session.execute(delete(ProfileRelease).where(ProfileRelease.day < before_day))
