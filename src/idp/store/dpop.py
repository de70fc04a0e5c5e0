"""DPoP proofs seen (RFC 9449 §11.1), shared by every replica through the database."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest
from idp.store.models import DpopProof
from idp.store.prepared import Connection, Prepared, dialect_of

_TABLE = cast(Table, DpopProof.__table__)


def _remember(insert: Any) -> Prepared:
    # One statement: the primary key decides, so of two requests with one proof exactly one
    # inserts (and gets the key back); the other finds the row there and gets nothing.
    return Prepared(
        insert(_TABLE).values(key=bindparam("key"), expires_at=bindparam("expires_at"))
        .on_conflict_do_nothing(index_elements=[_TABLE.c.key]).returning(_TABLE.c.key))


_REMEMBER = {"postgresql": _remember(postgresql_insert), "sqlite": _remember(sqlite_insert)}


async def remember_proof(connection: Connection, jkt: str, jti: str, expires_at: int) -> bool:
    """Record a proof's `jti` (under its key, so clients cannot collide): True the first time,
    False for a replay."""
    key = digest(f"{jkt}\x00{jti}")
    row = await _REMEMBER[dialect_of(connection)].first(
        connection, {"key": key, "expires_at": expires_at})
    return row is not None


async def purge(session: AsyncSession, now: int) -> None:
    """Proofs whose `iat` has left the accepted window: no replay of them is accepted anyway."""
    await session.execute(delete(DpopProof).where(DpopProof.expires_at <= now))
