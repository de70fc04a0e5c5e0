"""Retention (issue 16 item 6): a value collected for purposes (by an app, or typed on an app's
consent page) is kept while one of them is live for the customer: granted in one of their
live grants and, when the purpose carries `retention_days`, within that many days of the
value being set. Once none is, the maintenance job purges the value, and the consent ledger
records the purge with the attribute names and purposes only, never the values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from idp.services.consent import ledger
from idp.services.context import Context
from idp.services.profile.values import apply, locked_user
from idp.store import grants as grant_store
from idp.store import profile as store
from idp.store.models import ProfileProvenance
from idp.store.profile import Source

DAY = 86_400
BATCH = 200  # accounts per read
PURGE_ACTION = "purge"


def kept(row: ProfileProvenance, live: set[str], terms: Mapping[str, tuple[str, int | None]],
         now: int) -> bool:
    for purpose in row.purposes:
        if purpose not in live or purpose not in terms:
            continue
        days = terms[purpose][1]
        if days is None or now < row.updated_at + days * DAY:
            return True
    return False


async def purge_expired(ctx: Context) -> int:
    """One pass over every value collected for purposes; returns how many were purged. The
    candidates are read a batch of accounts at a time; each account found with something to
    purge is purged in a unit of work of its own (its row locked, its state read again), so
    the pass never holds the ledger's lock for long."""
    purged, after = 0, ""
    while True:
        now = ctx.now()
        async with ctx.db.transaction(read_only=True) as session:
            terms = await store.purpose_terms(session)
            rows = await store.purpose_bound(session, after, BATCH)
            by_user: dict[str, list[ProfileProvenance]] = defaultdict(list)
            for row in rows:
                by_user[row.user_id].append(row)
            due = []
            for user_id, items in by_user.items():
                live = await _live(session, user_id)
                if any(not kept(row, live, terms, now) for row in items):
                    due.append(user_id)
        if not rows:
            return purged
        for user_id in due:
            purged += await _purge_account(ctx, user_id)
        after = rows[-1].user_id


async def _live(session: AsyncSession, user_id: str) -> set[str]:
    """The purposes granted in the account's live grants."""
    grants = await grant_store.live_grants_of_user(session, user_id)
    return {str(p["id"]) for grant in grants for p in grant.purposes}


async def _purge_account(ctx: Context, user_id: str) -> int:
    async with ctx.db.transaction() as session:
        user = await locked_user(session, user_id)
        if user is None:
            return 0
        now = ctx.now()
        terms = await store.purpose_terms(session)
        live = await _live(session, user_id)
        gone = [row for row in (await store.provenance_of(session, user_id)).values()
                if row.purpose_bound and not kept(row, live, terms, now)]
        by_app: dict[str, list[ProfileProvenance]] = defaultdict(list)
        for row in gone:
            by_app[row.source_id if row.source in ("app", "customer") and row.source_id
                   else ""].append(row)
        for client_id, items in sorted(by_app.items()):
            names = sorted(row.name for row in items)
            purposes = sorted({p for row in items for p in row.purposes})
            await apply(session, user, dict.fromkeys(names), Source("customer"), now)
            grant = await grant_store.find_grant(session, user_id, client_id) \
                if client_id else None
            await ledger.append(
                ctx, session, grant_id=grant.id if grant is not None else "",
                client_id=client_id, user_id=user_id, action=PURGE_ACTION, channel="system",
                gpc=False, payload={
                    "user_id": user_id, "method": "retention", "attributes": names,
                    "purposes": purposes,
                    "reason": "the purposes these were collected for were withdrawn or "
                              "their retention period ended"})
    return len(gone)
