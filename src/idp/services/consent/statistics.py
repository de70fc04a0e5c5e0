"""Aggregate consent figures for the brand (issue 16 item 8): per app, purpose and version,
how many customers agree now and how many declined, and per day, week or month how many
granted, declined and withdrew. Counts only, never a person: rows are read and counted
without keeping any identifier, and a count from 1 to k-1 (IDP_CONSENT_STATISTICS_MIN_COUNT)
is shown as null so that no customer can be singled out from a cell.

"Now" is read from the live grants; the series from the consent ledger, whose entries say
what each answer changed. Entries whose personal payload was erased (an account deleted)
count in neither.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from idp.protocol.consent import versions
from idp.services import InvalidInput
from idp.services.context import Context
from idp.store import privacy as privacy_store
from idp.store.models import Grant, LedgerEntry

BUCKETS = ("day", "week", "month")
# How far back the series goes when `since` is not given, in buckets.
DEFAULT_PERIODS = {"day": 31, "week": 13, "month": 12}
MAX_PERIODS = 400
CONSENT_ACTIONS = ("grant", "reconsent", "change", "withdraw")
SUPPRESSION = ("Counts from 1 to {k_minus_1} are shown as null (fewer than {k} customers), so "
               "that no one can be singled out; 0 means none. Periods are whole UTC days, "
               "ISO weeks (from Monday) or calendar months.")

Cell = tuple[str, str, int]  # client id, purpose id, version


@dataclass(frozen=True)
class Window:
    bucket: str
    since: date  # the first period's first day
    until: date  # the day after the last period


def start_of(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


def next_start(start: date, bucket: str) -> date:
    if bucket == "week":
        return start + timedelta(days=7)
    if bucket == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def window(bucket: str, since: date | None, until: date | None, today: date) -> Window:
    """Whole periods only: `since` goes back to its period's start and `until` (the last day
    counted) forward to its period's end, so no query can cut a period to a few people."""
    if bucket not in BUCKETS:
        raise InvalidInput("bucket must be day, week or month")
    end = next_start(start_of(until or today, bucket), bucket)
    if since is None:
        first = start_of(until or today, bucket)
        for _ in range(DEFAULT_PERIODS[bucket] - 1):
            first = start_of(first - timedelta(days=1), bucket)
    else:
        first = start_of(since, bucket)
    if first >= end:
        raise InvalidInput("since must not be after until")
    periods, cursor = 0, first
    while cursor < end:
        periods, cursor = periods + 1, next_start(cursor, bucket)
        if periods > MAX_PERIODS:
            raise InvalidInput(f"at most {MAX_PERIODS} periods at a time")
    return Window(bucket, first, end)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def suppressed(count: int, k: int) -> int | None:
    return None if 0 < count < k else count


def _answers(action: str, payload: Mapping[str, Any]) -> Iterable[tuple[str, str, int]]:
    """What one ledger entry says each customer did: (granted|declined|withdrew, purpose,
    version). A raised version agreed to again is a grant of the new version."""
    before = versions((payload.get("before") or {}).get("purposes", []))
    after = versions((payload.get("after") or {}).get("purposes", []))
    declined = versions((payload.get("declined") or {}).get("purposes", []))
    asked = {str(p.get("id")) for p in payload.get("policy", []) if isinstance(p, dict)}
    for purpose, version in after.items():
        if before.get(purpose) != version:
            yield "granted", purpose, version
    for purpose, version in before.items():
        if purpose not in after:
            yield "withdrew", purpose, version
    if action in ("grant", "reconsent"):
        # The consent page's "no" to a purpose it asked about and had not been agreed.
        for purpose, version in declined.items():
            if purpose in asked and purpose not in before:
                yield "declined", purpose, version


async def consent_statistics(ctx: Context, *, bucket: str = "month", since: date | None = None,
                             until: date | None = None, client_id: str | None = None,
                             purpose_id: str | None = None) -> dict[str, Any]:
    today = datetime.fromtimestamp(ctx.now(), UTC).date()
    span = window(bucket, since, until, today)
    k = ctx.settings.consent_statistics_min_count
    now_counts: Counter[tuple[str, Cell]] = Counter()
    series: Counter[tuple[date, str, Cell]] = Counter()
    async with ctx.db.transaction(read_only=True) as session:
        grants = select(Grant.client_id, Grant.purposes, Grant.declined_purposes).where(
            Grant.revoked_at.is_(None))
        if client_id is not None:
            grants = grants.where(Grant.client_id == client_id)
        async for app, agreed, declined in await session.stream(
                grants.execution_options(yield_per=1000)):
            for kind, items in (("granted", agreed), ("declined", declined)):
                for purpose, version in versions(items or []).items():
                    if purpose_id in (None, purpose):
                        now_counts[kind, (app, purpose, version)] += 1
        entries = select(LedgerEntry.created_at, LedgerEntry.client_id, LedgerEntry.action,
                         LedgerEntry.payload).where(
            LedgerEntry.action.in_(CONSENT_ACTIONS), LedgerEntry.payload.is_not(None),
            LedgerEntry.created_at >= _epoch(span.since),
            LedgerEntry.created_at < _epoch(span.until))
        if client_id is not None:
            entries = entries.where(LedgerEntry.client_id == client_id)
        async for at, app, action, payload in await session.stream(
                entries.execution_options(yield_per=1000)):
            period = start_of(datetime.fromtimestamp(at, UTC).date(), bucket)
            for kind, purpose, version in _answers(action, payload or {}):
                if purpose_id in (None, purpose):
                    series[period, kind, (app, purpose, version)] += 1
        dns, lsu = await privacy_store.count_choices(session)
    return {
        "bucket": bucket,
        "since": span.since.isoformat(),
        "until": (span.until - timedelta(days=1)).isoformat(),
        "min_count": k,
        "suppression": SUPPRESSION.format(k=k, k_minus_1=k - 1),
        "current": _current(now_counts, k),
        "over_time": _over_time(series, k),
        "privacy_choices": {"do_not_sell_or_share": suppressed(dns, k),
                            "limit_sensitive_use": suppressed(lsu, k)},
    }


def _current(counts: Counter[tuple[str, Cell]], k: int) -> list[dict[str, Any]]:
    cells = sorted({cell for _, cell in counts})
    return [{"client_id": app, "purpose_id": purpose, "version": version,
             "granted": suppressed(counts["granted", (app, purpose, version)], k),
             "declined": suppressed(counts["declined", (app, purpose, version)], k)}
            for app, purpose, version in cells]


def _over_time(counts: Counter[tuple[date, str, Cell]], k: int) -> list[dict[str, Any]]:
    rows = sorted({(period, cell) for period, _, cell in counts})
    return [{"period": period.isoformat(), "client_id": app, "purpose_id": purpose,
             "version": version,
             **{kind: suppressed(counts[period, kind, (app, purpose, version)], k)
                for kind in ("granted", "declined", "withdrew")}}
            for period, (app, purpose, version) in rows]
