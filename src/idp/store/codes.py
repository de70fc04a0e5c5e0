"""Authorization codes: stored as digests and claimed with one conditional update."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuthorizationCode
from idp.store.prepared import Connection, inserting_rows

_CODES = cast(Table, AuthorizationCode.__table__)
_INSERT_CODE = inserting_rows(_CODES, after_pending=True)


async def add_code(connection: Connection, **values: Any) -> None:
    """A new code (every column given), written at once."""
    await _INSERT_CODE.run(connection, values)


async def claim_code(session: AsyncSession, code_hash: str, client_id: str, now: int
                     ) -> AuthorizationCode | None:
    """Mark the code used if it is unused and unexpired; the winner gets the row (REL-01).

    Two concurrent redemptions race on this single UPDATE; the database lets only one of them
    change the row, so at most one can ever see it returned.
    """
    result = await session.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.code_hash == code_hash,
            # RFC 6749 §4.1.3: only the client the code was issued to can redeem it.
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(used_at=now)
        .returning(AuthorizationCode)
    )
    return result.scalar_one_or_none()


async def find_code(session: AsyncSession, code_hash: str) -> AuthorizationCode | None:
    return await session.scalar(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
    )
