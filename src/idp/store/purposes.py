"""Purposes and the purposes each client asks for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.consent import PurposeInfo
from idp.store import grants as grant_store
from idp.store.models import ClientPurpose, Grant, Purpose
from idp.store.prepared import Connection, Prepared, detached, labelled


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


# What an authorization asks of a signed-in customer's consent, in one round trip: the
# customer's grant to the client (its columns NULL when there is none) beside each of the
# client's purposes (one row with no purpose when it has none).
_CLIENT_PURPOSES = _PURPOSES_OF_CLIENT.statement.order_by(None).subquery()
_GRANTS = cast(Table, Grant.__table__)
_GRANT_AND_PURPOSES = Prepared(
    select(*labelled(_GRANTS, "g_"), *_CLIENT_PURPOSES.c)
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(_GRANTS, and_(_GRANTS.c.user_id == bindparam("b_user_id"),
                             _GRANTS.c.client_id == bindparam("b_client_id")))
    .outerjoin(_CLIENT_PURPOSES, true())
    .order_by(_CLIENT_PURPOSES.c.required.desc(), _CLIENT_PURPOSES.c.id))
_GRANT_COLUMNS = tuple(column.name for column in _GRANTS.c)


async def grant_and_purposes(connection: Connection, user_id: str, client_id: str
                             ) -> tuple[Grant | None, tuple[PurposeInfo, ...]]:
    """`grants.grant_of` and `purposes_of_client` in one statement (the grant detached and
    read-only). In a unit of work holding a grant with changes not yet written, that grant,
    as `grant_of` answers."""
    if isinstance(connection, AsyncSession) and any(
            isinstance(held, Grant) for held in (*connection.new, *connection.dirty)):
        return (await grant_store.grant_of(connection, user_id, client_id),
                await purposes_of_client(connection, client_id))
    rows = await _GRANT_AND_PURPOSES.all(connection, {"b_user_id": user_id,
                                                      "b_client_id": client_id})
    first = rows[0]
    grant = (detached(Grant, "g_", _GRANT_COLUMNS, first)
             if first["g_id"] is not None else None)
    return grant, purposes_of(rows)


async def set_client_purposes(session: AsyncSession, client_id: str,
                              purposes: dict[str, bool]) -> None:
    await session.execute(delete(ClientPurpose).where(ClientPurpose.client_id == client_id))
    for purpose_id, required in purposes.items():
        session.add(ClientPurpose(client_id=client_id, purpose_id=purpose_id, required=required))
