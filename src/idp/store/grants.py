"""Grants: one customer's consent to one client."""

from __future__ import annotations

from typing import TypeGuard, cast

from sqlalchemy import Table, and_, bindparam, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.consent import PurposeInfo
from idp.store import purposes as purpose_store
from idp.store.models import Grant
from idp.store.prepared import Connection, Prepared, detached, labelled

_GRANTS = cast(Table, Grant.__table__)
_GRANT_COLUMNS = tuple(column.name for column in _GRANTS.c)
_GRANT_OF = Prepared(select(*_GRANTS.c).where(_GRANTS.c.user_id == bindparam("b_user_id"),
                                              _GRANTS.c.client_id == bindparam("b_client_id")))


async def find_grant(session: AsyncSession, user_id: str, client_id: str) -> Grant | None:
    """The grant to change, as the unit of work's own object."""
    return await session.scalar(
        select(Grant).where(Grant.user_id == user_id, Grant.client_id == client_id)
    )


async def grant_of(connection: Connection, user_id: str, client_id: str) -> Grant | None:
    """The grant to read (never to change): detached, from one prepared read, as every
    authorization request asks. In a unit of work that holds a grant with changes not yet
    written, that object, as `find_grant` answers."""
    if _holds_changed_grant(connection):
        return await find_grant(connection, user_id, client_id)
    values = await _GRANT_OF.first(connection, {"b_user_id": user_id, "b_client_id": client_id})
    return detached(Grant, "", _GRANT_COLUMNS, values) if values is not None else None


# What an authorization asks of a signed-in customer's consent, in one round trip: the
# customer's grant to the client (its columns NULL when there is none) beside each of the
# client's purposes (one row with no purpose when it has none).
_PURPOSES = purpose_store.CLIENT_PURPOSES
_GRANT_AND_PURPOSES = Prepared(
    select(*labelled(_GRANTS, "g_"), *_PURPOSES.c)
    .select_from(select(literal(1).label("one")).subquery())
    .outerjoin(_GRANTS, and_(_GRANTS.c.user_id == bindparam("b_user_id"),
                             _GRANTS.c.client_id == bindparam("b_client_id")))
    .outerjoin(_PURPOSES, true())
    .order_by(_PURPOSES.c.required.desc(), _PURPOSES.c.id))


async def grant_and_purposes(connection: Connection, user_id: str, client_id: str
                             ) -> tuple[Grant | None, tuple[PurposeInfo, ...]]:
    """`grant_of` and `purposes.purposes_of_client` in one statement."""
    if _holds_changed_grant(connection):
        return (await grant_of(connection, user_id, client_id),
                await purpose_store.purposes_of_client(connection, client_id))
    rows = await _GRANT_AND_PURPOSES.all(connection, {"b_user_id": user_id,
                                                      "b_client_id": client_id})
    grant = (detached(Grant, "g_", _GRANT_COLUMNS, rows[0])
             if rows[0]["g_id"] is not None else None)
    return grant, purpose_store.purposes_of(rows)


def _holds_changed_grant(connection: Connection) -> TypeGuard[AsyncSession]:
    """An ORM unit of work with a grant added or changed and not yet written (the prepared
    reads would not see it)."""
    return isinstance(connection, AsyncSession) and any(
        isinstance(held, Grant) for held in (*connection.new, *connection.dirty))


async def get_grant(session: AsyncSession, grant_id: str) -> Grant | None:
    return await session.get(Grant, grant_id)


async def live_grants_of_user(session: AsyncSession, user_id: str) -> list[Grant]:
    """The customer's grants not withdrawn, oldest first: the apps they are connected to."""
    return list(await session.scalars(
        select(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .order_by(Grant.created_at, Grant.client_id)))
