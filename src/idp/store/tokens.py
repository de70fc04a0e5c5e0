"""Access token records, for live-state checks and revocation by code or grant."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AccessToken


async def get_access_token(session: AsyncSession, jti: str) -> AccessToken | None:
    return await session.get(AccessToken, jti)


async def revoke_by_code(session: AsyncSession, code_hash: str, now: int) -> int:
    result = await session.execute(
        update(AccessToken)
        .where(AccessToken.code_hash == code_hash, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
