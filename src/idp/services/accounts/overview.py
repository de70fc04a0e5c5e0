"""What the account center shows at a glance (issue 15 item 7): the overview's summary of
each section, and what the sign-in-and-security and privacy pages list. Reads only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.locales import current_locale
from idp.services.accounts import center, linking, passkeys, two_step
from idp.services.consent import ledger
from idp.services.consent.texts import words_in
from idp.services.context import Context
from idp.services.upstream.providers import display_name
from idp.store import factors as factor_store
from idp.store import federation as federation_store
from idp.store import passkeys as passkey_store
from idp.store.models import BrowserSession, LedgerEntry, User


@dataclass(frozen=True)
class Summary:
    name: str | None
    apps: int  # connected apps: each receives at least who the customer is
    two_step: bool
    passkeys: int
    devices: int  # live browser sessions, this one included
    providers: list[str]  # connected sign-in providers' names
    has_password: bool
    optional_allowed: int  # optional purposes allowed in at least one app
    optional_total: int
    last_change: int | None  # the newest consent record


async def summary(ctx: Context, user: User) -> Summary:
    async with ctx.db.transaction(read_only=True) as session:
        apps = await center.apps_of_user(session, user.id,
                                         await words_in(ctx, session, current_locale()))
        across = center.purposes_across_apps(apps)
        return Summary(
            name=str((user.profile or {}).get("name") or "") or None,
            apps=len(apps),
            two_step=await factor_store.totp_factor(session, user.id) is not None,
            passkeys=await passkey_store.count_passkeys(session, user.id),
            devices=await _live_sessions(ctx, session, user.id),
            providers=await _providers(session, user.id),
            has_password=user.password_hash is not None,
            optional_allowed=sum(1 for p in across if p.allowed_in),
            optional_total=len(across),
            last_change=await _last_consent_record(ctx, session, user.id))


async def _live_sessions(ctx: Context, session: AsyncSession, user_id: str) -> int:
    # The same sessions as the "where you're signed in" page lists (signed_in.live_sessions).
    return int(await session.scalar(select(func.count()).select_from(BrowserSession).where(
        BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None),
        BrowserSession.expires_at > ctx.now())) or 0)


async def _providers(session: AsyncSession, user_id: str) -> list[str]:
    names: list[str] = []
    for identity in await federation_store.identities_of_user(session, user_id):
        upstream = await federation_store.get_upstream(session, identity.alias)
        name = display_name(upstream) if upstream else identity.alias.capitalize()
        if name not in names:
            names.append(name)
    return names


async def _last_consent_record(ctx: Context, session: AsyncSession, user_id: str
                               ) -> int | None:
    return await session.scalar(
        select(LedgerEntry.created_at)
        .where(LedgerEntry.subject_ref == ledger.subject_ref(ctx, user_id))
        .order_by(LedgerEntry.seq.desc()).limit(1))


@dataclass(frozen=True)
class Security:
    methods: linking.SignInMethods
    two_step: two_step.Status
    passkeys: list[passkeys.PasskeyView]
    devices: int


async def security(ctx: Context, user: User) -> Security:
    """The sign-in-and-security page: each part read by its own use case."""
    async with ctx.db.transaction(read_only=True) as session:
        devices = await _live_sessions(ctx, session, user.id)
    return Security(await linking.sign_in_methods(ctx, user),
                    await two_step.status(ctx, user.id),
                    await passkeys.list_passkeys(ctx, user.id), devices)


@dataclass(frozen=True)
class Privacy:
    across: list[center.PurposeAcrossApps]
    history: list[center.HistoryItem]


async def privacy(ctx: Context, user_id: str) -> Privacy:
    """The privacy page: the choices across apps and the consent history."""
    apps = await center.connected_apps(ctx, user_id)
    return Privacy(center.purposes_across_apps(apps), await center.history(ctx, user_id))
