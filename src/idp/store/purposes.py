"""Purposes and the purposes each client asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.consent import PurposeInfo
from idp.store.models import ClientPurpose, Purpose
from idp.store.prepared import Connection, Prepared


async def get_purpose(session: AsyncSession, purpose_id: str) -> Purpose | None:
    return await session.get(Purpose, purpose_id)


async def list_purposes(session: AsyncSession) -> list[Purpose]:
    return list(await session.scalars(select(Purpose).order_by(Purpose.id)))


_PURPOSE_COLUMNS = ("id", "title", "description", "data_categories", "legal_basis",
                    "sale_or_share", "version", "text_version")
_PURPOSES_OF_CLIENT = Prepared(
    select(*(getattr(Purpose, name) for name in _PURPOSE_COLUMNS), ClientPurpose.required)
    .join(ClientPurpose, ClientPurpose.purpose_id == Purpose.id)
    .where(ClientPurpose.client_id == bindparam("b_client_id"))
    .order_by(ClientPurpose.required.desc(), Purpose.id))


async def purposes_of_client(connection: Connection, client_id: str) -> tuple[PurposeInfo, ...]:
    """The client's purposes at their current versions, required ones first: one prepared
    read, in an ORM unit of work or on a bare connection (`Database.atomic()`)."""
    rows = await _PURPOSES_OF_CLIENT.all(connection, {"b_client_id": client_id})
    return purposes_of(rows)


def purposes_of(rows: Iterable[Mapping[str, Any]]) -> tuple[PurposeInfo, ...]:
    """`purposes_of_client`'s answer from its rows (a row whose `id` is None is no purpose)."""
    return tuple(PurposeInfo(row["id"], row["title"], row["description"],
                             tuple(row["data_categories"]), row["legal_basis"],
                             bool(row["sale_or_share"]), int(row["version"]),
                             bool(row["required"]), text_version=int(row["text_version"]))
                 for row in rows if row["id"] is not None)


# The client's purposes as a subquery, for a statement that reads them with something else
# (`grants.grant_and_purposes`); `purposes_of` reads its rows.
CLIENT_PURPOSES = _PURPOSES_OF_CLIENT.statement.order_by(None).subquery()


async def set_client_purposes(session: AsyncSession, client_id: str,
                              purposes: dict[str, bool]) -> None:
    await session.execute(delete(ClientPurpose).where(ClientPurpose.client_id == client_id))
    for purpose_id, required in purposes.items():
        session.add(ClientPurpose(client_id=client_id, purpose_id=purpose_id, required=required))
