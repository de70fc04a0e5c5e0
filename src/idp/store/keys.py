"""Signing keys at rest."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import SigningKey


async def published_keys(session: AsyncSession, now: int) -> list[SigningKey]:
    """Active keys and retired keys that may still have live tokens."""
    rows = await session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.state == "active", SigningKey.publish_until > now))
        .order_by(SigningKey.created_at.desc(), SigningKey.kid)
    )
    return list(rows)


async def all_keys(session: AsyncSession) -> list[SigningKey]:
    rows = await session.scalars(select(SigningKey).order_by(SigningKey.created_at, SigningKey.kid))
    return list(rows)


async def retire_active(session: AsyncSession, alg: str, now: int, publish_until: int) -> None:
    await session.execute(
        update(SigningKey)
        .where(SigningKey.alg == alg, SigningKey.state == "active")
        .values(state="retired", retired_at=now, publish_until=publish_until)
    )
