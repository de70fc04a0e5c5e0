"""Authorization codes: stored as digests and claimed with one conditional update."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import AuthorizationCode
from idp.store.prepared import Connection, Prepared, detached, inserting_rows

_CODES = cast(Table, AuthorizationCode.__table__)
_INSERT_CODE = inserting_rows(_CODES, after_pending=True, batched=True)


async def add_code(connection: Connection, **values: Any) -> None:
    """A new code (every column given), written at once."""
    await _INSERT_CODE.run(connection, values)


_CODE_COLUMNS = tuple(column.name for column in _CODES.c)
_CLAIM_CODE = Prepared(
    update(_CODES)
    .where(
        # (Bind names differ from the column names: an UPDATE reserves those for SET.)
        _CODES.c.code_hash == bindparam("b_code_hash"),
        # RFC 6749 §4.1.3: only the client the code was issued to can redeem it.
        _CODES.c.client_id == bindparam("b_client_id"),
        _CODES.c.used_at.is_(None),
        _CODES.c.expires_at > bindparam("b_now"),
    )
    .values(used_at=bindparam("b_now"))
    .returning(*_CODES.c))


async def claim_code(connection: Connection, code_hash: str, client_id: str, now: int
                     ) -> AuthorizationCode | None:
    """Mark the code used if it is unused and unexpired; the winner gets the row (REL-01),
    detached (read it, never change it).

    Two concurrent redemptions race on this single UPDATE; the database lets only one of them
    change the row, so at most one can ever see it returned.
    """
    values = await _CLAIM_CODE.first(connection, {
        "b_code_hash": code_hash, "b_client_id": client_id, "b_now": now})
    return detached(AuthorizationCode, "", _CODE_COLUMNS, values) if values else None


async def find_code(session: AsyncSession, code_hash: str) -> AuthorizationCode | None:
    return await session.scalar(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
    )
