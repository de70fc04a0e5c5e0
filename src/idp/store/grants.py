"""Grants: one customer's consent to one client."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Grant
from idp.store.prepared import Connection, Prepared, detached

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
    if isinstance(connection, AsyncSession) and any(
            isinstance(held, Grant) for held in (*connection.new, *connection.dirty)):
        return await find_grant(connection, user_id, client_id)
    values = await _GRANT_OF.first(connection, {"b_user_id": user_id, "b_client_id": client_id})
    return detached(Grant, "", _GRANT_COLUMNS, values) if values is not None else None


async def get_grant(session: AsyncSession, grant_id: str) -> Grant | None:
    return await session.get(Grant, grant_id)


async def live_grants_of_user(session: AsyncSession, user_id: str) -> list[Grant]:
    """The customer's grants not withdrawn, oldest first: the apps they are connected to."""
    return list(await session.scalars(
        select(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .order_by(Grant.created_at, Grant.client_id)))
