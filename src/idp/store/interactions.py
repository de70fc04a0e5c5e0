"""Pending authorization requests waiting for the end-user."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Interaction


async def get_interaction(session: AsyncSession, interaction_id: str, now: int
                          ) -> Interaction | None:
    if not interaction_id or len(interaction_id) > 64:
        return None
    row = await session.get(Interaction, interaction_id)
    if row is None or row.expires_at <= now:
        return None
    return row


async def delete_interaction(session: AsyncSession, interaction_id: str) -> None:
    await session.execute(delete(Interaction).where(Interaction.id == interaction_id))


async def purge_expired(session: AsyncSession, now: int) -> None:
    await session.execute(delete(Interaction).where(Interaction.expires_at <= now))
