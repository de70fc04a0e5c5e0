"""Accounts."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import User


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    if "\x00" in email:
        return None  # PostgreSQL text cannot hold NUL: no account has such an address
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def set_password_hash(session: AsyncSession, user_id: str, password_hash: str, now: int
                            ) -> None:
    await session.execute(
        update(User).where(User.id == user_id).values(password_hash=password_hash, updated_at=now)
    )
