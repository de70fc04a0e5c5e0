"""Signing keys at rest."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import SigningKey


async def published_keys(session: AsyncSession, now: int) -> list[SigningKey]:
    """Next and active keys, and retired keys that may still have live tokens."""
    rows = await session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.state.in_(("active", "next")), SigningKey.publish_until > now))
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


async def promote_next(session: AsyncSession, alg: str, now: int) -> str | None:
    """Make the oldest next key active; None when there is none (or another replica won)."""
    candidate = await session.scalar(
        select(SigningKey.kid)
        .where(SigningKey.alg == alg, SigningKey.state == "next")
        .order_by(SigningKey.created_at, SigningKey.kid)
        .limit(1)
    )
    if candidate is None:
        return None
    result = await session.execute(
        update(SigningKey)
        .where(SigningKey.kid == candidate, SigningKey.state == "next")
        .values(state="active", activated_at=now)
    )
    return candidate if getattr(result, "rowcount", 0) == 1 else None
