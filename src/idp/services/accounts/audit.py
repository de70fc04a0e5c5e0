"""The admin audit log: who changed what, when, with the object before and after. Written in
the unit of work of the change itself (`idp.store.audit.record`, re-exported here), so a
change and its record stand or fall together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.services.context import Context
from idp.store.audit import record
from idp.store.models import AdminEvent

__all__ = ["Event", "events", "record"]

MAX_PAGE = 200


@dataclass(frozen=True)
class Event:
    id: str
    at: int
    actor: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


async def events(ctx: Context, *, target_id: str | None = None, limit: int = 50,
                 after: str | None = None) -> list[Event]:
    """Newest first. `after` is the id of the last event of the previous page: the page
    goes on from there (keyset pagination on the event's sequence number: nothing skipped
    or repeated when new events arrive meanwhile)."""
    query = select(AdminEvent).order_by(AdminEvent.seq.desc())
    if target_id is not None:
        query = query.where(AdminEvent.target_id == target_id)
    async with ctx.db.transaction(read_only=True) as session:
        if after is not None:
            last = await session.scalar(select(AdminEvent.seq).where(
                AdminEvent.id == after[:32]))
            if last is None:
                return []
            query = query.where(AdminEvent.seq < last)
        rows = await session.scalars(query.limit(max(1, min(limit, MAX_PAGE))))
        return [Event(r.id, r.at, r.actor, r.action, r.target_type, r.target_id, r.before,
                      r.after) for r in rows]
