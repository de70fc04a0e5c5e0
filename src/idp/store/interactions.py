"""Pending authorization requests waiting for the end-user."""

from __future__ import annotations

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuthorizationCode, Interaction


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


async def recently_used(session: AsyncSession, client_id: str, since: int,
                        values: dict[str, str]) -> set[str]:
    """Which of `values` ("code_challenge", "nonce": the value) an authorization request of
    `client_id` made since `since` already carried: one still waiting for the end-user (an
    interaction) or one answered with a code. Read from the database, so every replica sees
    every other replica's requests."""
    if not values:
        return set()
    codes = {"code_challenge": AuthorizationCode.code_challenge,
             "nonce": AuthorizationCode.nonce}
    carried = {
        name: or_(
            exists().where(Interaction.client_id == client_id, Interaction.created_at >= since,
                           Interaction.request[name].as_string() == value),
            exists().where(AuthorizationCode.client_id == client_id,
                           AuthorizationCode.created_at >= since,
                           codes[name] == value),
        ).label(name)
        for name, value in values.items()
    }
    row = (await session.execute(select(*carried.values()))).one()
    return {name for name, found in zip(carried, row, strict=True) if found}
