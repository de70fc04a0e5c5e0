"""Browser sessions (single sign-on)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.domain import SessionInfo
from idp.store.models import BrowserSession


async def find_live_session(session: AsyncSession, id_hash: str, now: int) -> SessionInfo | None:
    row = await session.get(BrowserSession, id_hash)
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return SessionInfo(row.sid, row.user_id, row.auth_time, tuple(row.amr), row.acr)


async def find_by_sid(session: AsyncSession, sid: str, now: int) -> SessionInfo | None:
    row = await session.scalar(select(BrowserSession).where(BrowserSession.sid == sid))
    if row is None or row.ended_at is not None or row.expires_at <= now:
        return None
    return SessionInfo(row.sid, row.user_id, row.auth_time, tuple(row.amr), row.acr)


async def end_session(session: AsyncSession, id_hash: str, now: int) -> None:
    await session.execute(
        update(BrowserSession)
        .where(BrowserSession.id_hash == id_hash, BrowserSession.ended_at.is_(None))
        .values(ended_at=now)
    )
