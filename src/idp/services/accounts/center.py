"""The account center's use cases for the signed-in customer: who am I, what do my apps get
and why, what did I agree to and when (the profile itself: idp.services.profile)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest
from idp.domain import SessionInfo
from idp.locales import N_, current_locale, gettext
from idp.protocol.consent import CATEGORY_TITLES, PurposeInfo, group_scopes_by_category, versions
from idp.protocol.privacy import PRIVACY_ACTION
from idp.protocol.scopes import ScopeInfo, describe_scopes
from idp.services.consent import ledger
from idp.services.consent.grants import DeliveryStatus, delivery_status
from idp.services.consent.privacy_choices import privacy_summary
from idp.services.consent.texts import ConsentWords, words_in
from idp.services.context import Context
from idp.services.signin.second_factor import needs_second_factor
from idp.store import clients as client_store
from idp.store import grants as grant_store
from idp.store import purposes as purpose_store
from idp.store import sessions as session_store
from idp.store import users as user_store
from idp.store.models import Grant, LedgerEntry, User


@dataclass(frozen=True)
class PurposeChoice:
    purpose: PurposeInfo
    granted: bool
    stale: bool  # agreed to an older version


@dataclass(frozen=True)
class AppView:
    client_id: str
    name: str
    since: int
    updated_at: int
    data: dict[str, list[ScopeInfo]]  # category title -> what the app receives
    optional_scopes: list[tuple[ScopeInfo, bool]]  # (scope, granted)
    purposes: list[PurposeChoice]


@dataclass(frozen=True)
class HistoryItem:
    entry_id: str
    action: str
    app: str
    at: int
    channel: str
    gpc: bool
    summary: str


async def current_user(ctx: Context, session_cookie: str | None) -> tuple[User, SessionInfo]:
    if session_cookie:
        async with ctx.db.transaction() as session:
            live = await session_store.find_live_session(session, digest(session_cookie),
                                                         ctx.now())
            user = await user_store.get_user(session, live.user_id) if live else None
            if live is not None:
                await session_store.touch(session, digest(session_cookie), ctx.now())
        if user is not None and live is not None and user.disabled_at is None:
            return user, live
    raise errors.LoginRequired(redirectable=False)


async def signed_in(ctx: Context, session_cookie: str | None
                    ) -> tuple[User, SessionInfo] | None:
    """The signed-in account, or None (the page then sends the browser to sign in)."""
    try:
        return await current_user(ctx, session_cookie)
    except errors.LoginRequired:
        return None


def recently_authenticated(ctx: Context, info: SessionInfo) -> bool:
    """Whether the session's sign-in is fresh enough for linking, unlinking or deleting
    (federation.md §9 requirement 25). Otherwise the customer confirms at /account/reauth."""
    return ctx.now() - info.auth_time <= ctx.settings.recent_auth_seconds


async def confirmed_recently(ctx: Context, info: SessionInfo) -> bool:
    """Whether the session may link or remove a sign-in method, change the address or the
    password, remove the second factor, export or delete the account: a recent sign-in that,
    when the account has a second factor, used it (issue 12 item 7; ASVS 6.3.4, 7.5.1). A
    session from before the factor was set up, or from a password change without it, is
    sent to /account/reauth, which asks for the password and then the code."""
    if not recently_authenticated(ctx, info):
        return False
    return "mfa" in info.amr or not await has_second_factor(ctx, info.user_id)


async def has_second_factor(ctx: Context, user_id: str) -> bool:
    async with ctx.db.transaction(read_only=True) as session:
        return await needs_second_factor(session, user_id)


async def connected_apps(ctx: Context, user_id: str) -> list[AppView]:
    async with ctx.db.transaction(read_only=True) as session:
        return await apps_of_user(session, user_id,
                                  await words_in(ctx, session, current_locale()))


async def apps_of_user(session: AsyncSession, user_id: str,
                       words: ConsentWords | None = None) -> list[AppView]:
    """The apps the customer is connected to (a live grant of a client that still exists),
    inside the caller's unit of work; in `words`' language (issue 15 item 4)."""
    views = []
    for grant in await grant_store.live_grants_of_user(session, user_id):
        client = await client_store.get_client(session, grant.client_id)
        if client is None:
            continue
        purposes = await purpose_store.purposes_of_client(session, client.client_id)
        if words is not None:
            purposes = tuple(map(words.purpose, purposes))
        views.append(_app_view(grant, client.name, client.optional_scopes, purposes, words))
    return views


def _app_view(grant: Grant, name: str, optional: tuple[str, ...],
              purposes: tuple[PurposeInfo, ...], words: ConsentWords | None) -> AppView:
    def described(scopes: list[str]) -> list[ScopeInfo]:
        infos = describe_scopes(scopes)
        return [words.scope(info) for info in infos] if words is not None else infos

    data = {
        (words.category(category) if words is not None else CATEGORY_TITLES[category]):
        described(scopes)
        for category, scopes in group_scopes_by_category(grant.scopes).items()
    }
    offered = [s for s in [*grant.scopes, *grant.declined_scopes] if s in optional]
    agreed = versions(grant.purposes)
    answered = agreed | versions(grant.declined_purposes)
    return AppView(
        client_id=grant.client_id, name=name, since=grant.created_at,
        updated_at=grant.updated_at, data=data,
        optional_scopes=[(info, info.name in grant.scopes)
                         for info in described(list(dict.fromkeys(offered)))],
        purposes=[PurposeChoice(p, p.id in agreed, answered.get(p.id, p.version) != p.version)
                  for p in purposes if p.id in answered],
    )


@dataclass(frozen=True)
class PurposeAcrossApps:
    purpose: PurposeInfo
    allowed_in: list[str]  # app names
    apps: list[str]


def purposes_across_apps(apps: list[AppView]) -> list[PurposeAcrossApps]:
    """Optional purposes of the connected apps, with where each one is allowed."""
    found: dict[str, PurposeAcrossApps] = {}
    for app in apps:
        for choice in app.purposes:
            if choice.purpose.required:
                continue
            entry = found.setdefault(choice.purpose.id,
                                     PurposeAcrossApps(choice.purpose, [], []))
            entry.apps.append(app.name)
            if choice.granted:
                entry.allowed_in.append(app.name)
    return sorted(found.values(), key=lambda p: p.purpose.title)


async def app_view(ctx: Context, user_id: str, client_id: str) -> AppView:
    for view in await connected_apps(ctx, user_id):
        if view.client_id == client_id:
            return view
    raise errors.InvalidRequest(N_("This app is not connected to your account"), redirectable=False)


async def history(ctx: Context, user_id: str, limit: int = 50) -> list[HistoryItem]:
    async with ctx.db.transaction() as session:
        entries = (await ledger.entries_for_subject(ctx, session, user_id))[:limit]
    return [_history_item(e) for e in entries]


SCOPE_WORDS = {"openid": N_("sign-in"), "profile": N_("your profile"),
               "email": N_("your email address"), "phone": N_("your phone number"),
               "address": N_("your postal address"), "offline_access": N_("staying connected")}


def _history_item(entry: LedgerEntry) -> HistoryItem:
    """One line of the timeline, in plain words of the current language (purpose titles as
    the customer saw them)."""
    payload: dict[str, Any] = entry.payload or {}
    app = str(payload.get("client_name", entry.client_id))
    if entry.action == "purge":  # issue 16 item 6: the names of what was removed, no values
        return HistoryItem(entry.entry_id, entry.action, app, entry.created_at, entry.channel,
                           entry.gpc, ", ".join(payload.get("attributes") or ()))
    if entry.action == PRIVACY_ACTION:  # issue 16 item 5: account-wide, no app
        return HistoryItem(entry.entry_id, entry.action, "", entry.created_at, entry.channel,
                           entry.gpc, privacy_summary(payload))
    titles = {p["id"]: p["title"] for p in payload.get("policy", [])}

    def items(side: str) -> set[str]:
        snapshot = payload.get(side) or {}
        return ({gettext(SCOPE_WORDS[s]) if s in SCOPE_WORDS else s
                 for s in snapshot.get("scopes", [])} |
                {titles.get(p["id"], p["id"]) for p in snapshot.get("purposes", [])})

    before, after = items("before"), items("after")
    parts = []
    if after - before:
        parts.append(gettext("allowed %(items)s", items=", ".join(sorted(after - before))))
    if before - after:
        parts.append(gettext("stopped %(items)s", items=", ".join(sorted(before - after))))
    return HistoryItem(entry.entry_id, entry.action, app, entry.created_at, entry.channel,
                       entry.gpc, "; ".join(parts) or gettext("no change"))


async def change_status(ctx: Context, change_id: str) -> DeliveryStatus:
    async with ctx.db.transaction() as session:
        return await delivery_status(session, change_id)


async def own_ledger_entry(ctx: Context, user_id: str, entry_id: str) -> LedgerEntry:
    async with ctx.db.transaction() as session:
        entry = await ledger.get_entry(session, entry_id)
    if entry is None or entry.subject_ref != ledger.subject_ref(ctx, user_id):
        raise errors.InvalidRequest(N_("No such consent record"), redirectable=False)
    return entry


# Editing the profile: idp.services.profile.values (each value keeps its provenance).
