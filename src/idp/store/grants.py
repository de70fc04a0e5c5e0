"""Grants: one customer's consent to one client."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Grant


async def find_grant(session: AsyncSession, user_id: str, client_id: str) -> Grant | None:
    return await session.scalar(
        select(Grant).where(Grant.user_id == user_id, Grant.client_id == client_id)
    )


async def get_grant(session: AsyncSession, grant_id: str) -> Grant | None:
    return await session.get(Grant, grant_id)


async def live_grants_of_user(session: AsyncSession, user_id: str) -> list[Grant]:
    """The customer's grants not withdrawn, oldest first: the apps they are connected to."""
    return list(await session.scalars(
        select(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        .order_by(Grant.created_at, Grant.client_id)))
