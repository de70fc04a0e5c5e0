"""The profile schema as the release rules read it, held per process for
`Settings.client_cache_seconds` (like client registrations): the token and UserInfo paths
then read no schema. A change made in this process is seen at once; other processes follow
within the cache time."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.profile import ProfileSchema
from idp.services.context import Context
from idp.store import profile as store
from idp.store.db import Database

_HELD: WeakKeyDictionary[Database, tuple[float, ProfileSchema]] = WeakKeyDictionary()


async def schema_in(session: AsyncSession) -> ProfileSchema:
    """The schema read in the caller's unit of work (pages, the Profile API's writes)."""
    terms = await store.purpose_terms(session)
    return ProfileSchema.of(await store.described(session),
                            {pid: basis for pid, (basis, _) in terms.items()})


async def current_schema(ctx: Context) -> ProfileSchema:
    """The schema for a hot path: from this process's copy while it is fresh. Read before
    any unit of work opens (a miss takes a connection of its own)."""
    now = ctx.clock()
    held = _HELD.get(ctx.db)
    ttl = ctx.settings.client_cache_seconds
    if held is not None and now - held[0] < ttl:
        return held[1]
    async with ctx.db.transaction(read_only=True) as session:
        schema = await schema_in(session)
    if ttl > 0:
        _HELD[ctx.db] = (now, schema)
    return schema


def forget(ctx: Context) -> None:
    """After a change to the schema or to a purpose's legal basis made in this process."""
    _HELD.pop(ctx.db, None)
