"""The access log (issue 16 item 4): every release of profile data to an app (an ID token with
claims, UserInfo, a Profile API read) is on record per customer, app, attribute, way and day.

A day's release is written once: one INSERT ... ON CONFLICT DO NOTHING of its attributes, and
this process remembers what it recorded today, so an app calling UserInfo or refreshing all day
costs no write after the first (the hot paths of issue 10). A write happens only after the
release's own unit of work: a token request's releases are recorded once its tokens are
committed (`idp.services.profile.release.issuing`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from idp.locales import N_, gettext
from idp.services.context import Context
from idp.services.profile.cache import current_schema
from idp.services.profile.values import definition_of, shown
from idp.store import clients as client_store
from idp.store import profile as store

DAY = 86_400
VIA = ("id_token", "userinfo", "profile_api")
MAX_REMEMBERED = 50_000
KEPT_DAYS = 400  # shown in the account center and exported; older days are purged
# Claims that carry no profile data of the customer's.
NOT_PROFILE = frozenset({"sub", "consent", "updated_at"})
ACCOUNT_TITLES = {"email": N_("Email address"), "email_verified": N_("Email verified")}


@dataclass(frozen=True)
class Release:
    user_id: str
    client_id: str
    via: str
    names: frozenset[str]
    at: int


# (user, client, day, via) -> the attributes recorded for it by this process.
_recorded: dict[tuple[str, str, int, str], frozenset[str]] = {}


def release(user_id: str, client_id: str, via: str, names: Iterable[str], at: int) -> Release:
    return Release(user_id, client_id, via, frozenset(names) - NOT_PROFILE, at)


async def record(ctx: Context, *releases: Release) -> None:
    """Put what is not yet on record today, in one statement; nothing when all of it is."""
    rows, keys = [], []
    for item in releases:
        key = (item.user_id, item.client_id, item.at // DAY, item.via)
        new = item.names - _recorded.get(key, frozenset())
        if not new:
            continue
        keys.append((key, item.names))
        rows += [{"user_id": item.user_id, "client_id": item.client_id, "day": key[2],
                  "attribute": name, "via": item.via, "first_at": item.at}
                 for name in sorted(new)]
    if not rows:
        return
    async with ctx.db.autocommit() as session:
        await store.add_releases(session, rows)
    if len(_recorded) >= MAX_REMEMBERED:
        _recorded.clear()
    for key, names in keys:
        _recorded[key] = _recorded.get(key, frozenset()) | names


@dataclass(frozen=True)
class Received:
    """What one app received on one day."""

    client_id: str
    app: str
    day: str  # YYYY-MM-DD (UTC)
    first_at: int
    attributes: tuple[tuple[str, str], ...]  # (name, title shown)
    via: tuple[str, ...]


async def received(ctx: Context, user_id: str, days: int = KEPT_DAYS) -> list[Received]:
    """What each app received, and when: newest day first."""
    since = ctx.now() // DAY - days
    async with ctx.db.transaction(read_only=True) as session:
        rows = await store.releases_of(session, user_id, since)
        names = {}
        for client_id in {row.client_id for row in rows}:
            client = await client_store.get_client(session, client_id)
            names[client_id] = client.name if client is not None else client_id
    grouped: dict[tuple[int, str], list[tuple[str, str, int]]] = {}
    for row in rows:
        grouped.setdefault((row.day, row.client_id), []).append(
            (row.attribute, row.via, row.first_at))
    schema = await current_schema(ctx)

    def title(name: str) -> str:
        if name in ACCOUNT_TITLES:
            return gettext(ACCOUNT_TITLES[name])
        return shown(definition_of(schema, name)).title

    return [Received(client_id, names[client_id], _date(day), min(i[2] for i in items),
                     tuple((n, title(n)) for n in sorted({i[0] for i in items})),
                     tuple(v for v in VIA if any(i[1] == v for i in items)))
            for (day, client_id), items in sorted(grouped.items(),
                                                  key=lambda kv: (-kv[0][0], names[kv[0][1]]))]


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
