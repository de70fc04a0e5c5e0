"""The profile's part of the customer's copy of their data (GDPR Art. 15 and 20; CCPA right to
know): where each value came from, and what each app received and when (issue 16 items 1, 4).
Read in the export's own read-only unit of work (idp.services.accounts.export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.services.profile.access_log import DAY
from idp.store import profile as store
from idp.store.models import Client

Json = dict[str, Any]


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ProfilePart:
    provenance: dict[str, Json]  # attribute name -> where its value came from
    access: list[Json]  # what each app received, day by day, oldest first


async def profile_part(session: AsyncSession, user_id: str) -> ProfilePart:
    rows = await store.provenance_of(session, user_id)
    releases = await store.releases_of(session, user_id, 0)
    client_ids = {r.client_id for r in releases} | {
        r.source_id for r in rows.values() if r.source in ("app", "customer") and r.source_id}
    names: dict[str, str] = {}
    if client_ids:
        names = {str(cid): str(name) for cid, name in await session.execute(
            select(Client.client_id, Client.name).where(
                Client.client_id.in_(sorted(i for i in client_ids if i))))}
    provenance = {name: {
        "source": row.source,
        # The provider, the app (its client_id and name), or the operator.
        "by": row.source_id,
        **({"app": names.get(row.source_id, row.source_id)}
           if row.source in ("app", "customer") and row.source_id else {}),
        "set_at": _rfc3339(row.updated_at),
        "collected_for_purposes": list(row.purposes),
    } for name, row in sorted(rows.items())}
    days: dict[tuple[int, str], list[Any]] = {}
    for row in releases:
        days.setdefault((row.day, row.client_id), []).append(row)
    access = [{
        "client_id": client_id,
        "app": names.get(client_id, client_id),
        "day": datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d"),
        "first_at": _rfc3339(min(r.first_at for r in items)),
        "attributes": sorted({r.attribute for r in items}),
        "via": sorted({r.via for r in items}),
    } for (day, client_id), items in sorted(days.items())]
    return ProfilePart(provenance, access)
