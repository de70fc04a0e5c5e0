"""The way back from a pairwise `sub` to the account (OIDC Core §8.1): written, insert if
absent, when a pairwise client's grant is given; read when such a client sends a `sub`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.pairwise import MAX_SECTOR_LENGTH
from idp.store.models import PairwiseSubject
from idp.store.prepared import dialect_of

MAX_SUB_LENGTH = 64


async def remember(session: AsyncSession, sector: str, sub: str, user_id: str, now: int
                   ) -> None:
    """Note that `sub` names `user_id` in `sector`; a second note of the same is nothing
    (the `sub` is computed, so it names the same account whoever writes it)."""
    insert = postgresql_insert if dialect_of(session) == "postgresql" else sqlite_insert
    await session.execute(insert(PairwiseSubject).values(
        sector=sector, sub=sub, user_id=user_id, created_at=now,
    ).on_conflict_do_nothing(index_elements=["sector", "sub"]))


async def account_of(session: AsyncSession, sector: str, sub: str) -> str | None:
    """The account a pairwise `sub` of this sector names, or None."""
    if not sub or len(sub) > MAX_SUB_LENGTH or len(sector) > MAX_SECTOR_LENGTH or (
            "\x00" in sub):
        return None
    return await session.scalar(select(PairwiseSubject.user_id).where(
        PairwiseSubject.sector == sector, PairwiseSubject.sub == sub))
