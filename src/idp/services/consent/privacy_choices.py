"""The customer's CCPA/CPRA choices (issue 16 item 5): "do not sell or share my personal
information" and "limit the use of my sensitive personal information", set in the account
center, by an operator on the customer's request, or by a Global Privacy Control signal from
the signed-in customer's browser.

A change is one transaction: the account's row, one consent-ledger entry (account-wide: no
grant, no app), and a consent-change event for every connected app with the new `consent`
claim (its `privacy` member, and sale-or-share purposes left out while do-not-sell is on).
Tokens issued from then on carry the new choices; UserInfo and introspection answer them at
once; access tokens issued before keep theirs until they expire (at most
IDP_ACCESS_TOKEN_TTL), which the event tells apps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest, new_handle
from idp.locales import N_, gettext
from idp.notifications.outbox import CLAIMS_CHANGE_EVENT, enqueue_security_event
from idp.observability import metrics
from idp.protocol.privacy import (
    PRIVACY_ACTION,
    SET_BY_ACCOUNT,
    SET_BY_GPC,
    SET_BY_OPERATOR,
    PrivacyChoices,
    gpc_applies,
)
from idp.services import NotFound
from idp.services.consent import ledger
from idp.services.consent.grants import grant_consent_claim
from idp.services.context import Context
from idp.store import audit
from idp.store import clients as client_store
from idp.store import grants as grant_store
from idp.store import privacy as privacy_store
from idp.store import purposes as purpose_store
from idp.store import sessions as session_store
from idp.store import users as user_store
from idp.store.models import PrivacyChoice

# How each way of setting a choice is named in the ledger (`method`) and to apps
# (CAEP `initiating_entity`).
METHODS = {SET_BY_ACCOUNT: "account center", SET_BY_GPC: "Global Privacy Control",
           SET_BY_OPERATOR: "operator"}
INITIATED_BY = {SET_BY_ACCOUNT: "user", SET_BY_GPC: "user", SET_BY_OPERATOR: "admin"}


class UnknownAccount(NotFound):
    """No such account (the admin API answers 404)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no account {user_id[:64]}")


@dataclass(frozen=True)
class ChoicesView:
    """The two choices with how and when each was last set (None: never chosen)."""

    do_not_sell_or_share: bool = False
    do_not_sell_set_by: str | None = None
    do_not_sell_set_at: int | None = None
    limit_sensitive_use: bool = False
    limit_sensitive_set_by: str | None = None
    limit_sensitive_set_at: int | None = None
    # Do-not-sell was turned off while the browser sent GPC: that signal no longer turns it on.
    gpc_override: bool = False

    @property
    def choices(self) -> PrivacyChoices:
        return PrivacyChoices(self.do_not_sell_or_share, self.limit_sensitive_use)


def _view(row: PrivacyChoice | None) -> ChoicesView:
    if row is None:
        return ChoicesView()
    return ChoicesView(row.do_not_sell_or_share, row.do_not_sell_set_by, row.do_not_sell_set_at,
                       row.limit_sensitive_use, row.limit_sensitive_set_by,
                       row.limit_sensitive_set_at, row.gpc_override)


async def read_choices(ctx: Context, user_id: str) -> ChoicesView:
    async with ctx.db.transaction(read_only=True) as session:
        if await user_store.get_user(session, user_id) is None:
            raise UnknownAccount(user_id)
        return _view(await privacy_store.find_choices(session, user_id))


async def choices_page(ctx: Context, user_id: str) -> tuple[ChoicesView, list[str]]:
    """The account center's page: the choices, and the titles of the sale-or-share purposes
    the customer agreed to with some app (off while do-not-sell is on)."""
    async with ctx.db.transaction(read_only=True) as session:
        view = _view(await privacy_store.find_choices(session, user_id))
        agreed = {str(p["id"]) for grant in await grant_store.live_grants_of_user(
            session, user_id) for p in grant.purposes}
        sale = [p.title for p in await purpose_store.list_purposes(session)
                if p.sale_or_share and p.id in agreed]
    return view, sale


@dataclass(frozen=True)
class ChoicesChanged:
    view: ChoicesView
    change_id: str | None  # None when nothing changed (no ledger entry, no event)


async def set_choices(ctx: Context, user_id: str, *, do_not_sell_or_share: bool | None,
                      limit_sensitive_use: bool | None, set_by: str, gpc: bool = False,
                      actor: str | None = None) -> ChoicesChanged:
    """Set either choice or both (None leaves one as it is). `gpc`: the request carried
    `Sec-GPC: 1`; turning do-not-sell off against it is the customer's confirmed choice
    (Cal. Code Regs. tit. 11 §7025(c)(3)), which the signal then no longer overrides.
    `actor`: the operator's (admin client id or "cli"); a change is in the audit log."""
    async with ctx.db.transaction() as session:
        if await user_store.get_user(session, user_id) is None:
            raise UnknownAccount(user_id)
        before = _view(await privacy_store.find_choices(session, user_id))
        change_id = await set_choices_in(ctx, session, user_id,
                                         do_not_sell_or_share=do_not_sell_or_share,
                                         limit_sensitive_use=limit_sensitive_use,
                                         set_by=set_by, gpc=gpc)
        view = _view(await privacy_store.find_choices(session, user_id))
        if actor is not None and change_id is not None:
            audit.record(session, ctx.now(), actor, "user.privacy_choices", "user", user_id,
                         asdict(before), asdict(view))
    ctx.notify_outbox()
    return ChoicesChanged(view, change_id)


async def set_choices_in(ctx: Context, session: AsyncSession, user_id: str, *,
                         do_not_sell_or_share: bool | None, limit_sensitive_use: bool | None,
                         set_by: str, gpc: bool) -> str | None:
    """`set_choices` in the caller's unit of work; the change id, or None if nothing
    changed."""
    now = ctx.now()
    row = await privacy_store.lock_choices(session, user_id, now)
    before = PrivacyChoices(row.do_not_sell_or_share, row.limit_sensitive_use)
    if do_not_sell_or_share is not None and do_not_sell_or_share != row.do_not_sell_or_share:
        row.do_not_sell_or_share = do_not_sell_or_share
        row.do_not_sell_set_by, row.do_not_sell_set_at = set_by, now
        row.gpc_override = not do_not_sell_or_share and gpc and set_by == SET_BY_ACCOUNT
    if limit_sensitive_use is not None and limit_sensitive_use != row.limit_sensitive_use:
        row.limit_sensitive_use = limit_sensitive_use
        row.limit_sensitive_set_by, row.limit_sensitive_set_at = set_by, now
    after = PrivacyChoices(row.do_not_sell_or_share, row.limit_sensitive_use)
    if after == before:
        return None
    row.updated_at = now
    await session.flush()
    change_id = new_handle(16)
    await ledger.append(
        ctx, session, grant_id="", client_id="", user_id=user_id, action=PRIVACY_ACTION,
        channel="operator" if set_by == SET_BY_OPERATOR else "web", gpc=gpc,
        payload={"user_id": user_id, "change_id": change_id, "method": METHODS[set_by],
                 "set_by": set_by, "before": before.claim(), "after": after.claim()})
    await _tell_apps(ctx, session, user_id, set_by, change_id)
    if set_by == SET_BY_GPC:
        metrics.GPC_SIGNALS.labels("applied").inc()
    return change_id


async def _tell_apps(ctx: Context, session: AsyncSession, user_id: str, set_by: str,
                     change_id: str) -> None:
    """The consent-change event (CAEP token-claims-change) for every connected app, with the
    `consent` claim its tokens carry from now on."""
    standing = await privacy_store.standing_of_user(session, user_id)
    now = ctx.now()
    for grant in await grant_store.live_grants_of_user(session, user_id):
        client = await client_store.get_client(session, grant.client_id)
        if client is None:
            continue
        enqueue_security_event(
            session, client, ctx.settings.issuer, ctx.subject_of(client, user_id),
            CLAIMS_CHANGE_EVENT,
            {"claims": {"consent": grant_consent_claim(grant, None, standing)},
             "initiating_entity": INITIATED_BY[set_by]}, now, change_id)


async def apply_gpc_in(ctx: Context, session: AsyncSession, user_id: str) -> str | None:
    """A signed-in request carried `Sec-GPC: 1` (GPC §3; Cal. Code Regs. tit. 11 §7025): a
    valid request to opt out of sale and sharing, recorded as set by GPC. In the caller's
    unit of work (the consent page's); the change id, or None if it changed nothing."""
    row = await privacy_store.find_choices(session, user_id)
    if row is not None and not gpc_applies(
            PrivacyChoices(row.do_not_sell_or_share, row.limit_sensitive_use),
            row.gpc_override):
        return None
    return await set_choices_in(ctx, session, user_id, do_not_sell_or_share=True,
                                limit_sensitive_use=None, set_by=SET_BY_GPC, gpc=True)


async def honour_gpc(ctx: Context, session_cookie: str) -> str | None:
    """`Sec-GPC: 1` on a request of the account center: applied to the signed-in account.
    A read first, so a signal that changes nothing (the usual case) takes no write lock."""
    async with ctx.db.transaction(read_only=True) as session:
        live = await session_store.find_live_session(session, digest(session_cookie),
                                                     ctx.now())
        if live is None:
            return None
        row = await privacy_store.find_choices(session, live.user_id)
        if row is not None and not gpc_applies(
                PrivacyChoices(row.do_not_sell_or_share, row.limit_sensitive_use),
                row.gpc_override):
            return None
    async with ctx.db.transaction() as session:
        change_id = await apply_gpc_in(ctx, session, live.user_id)
    ctx.notify_outbox()
    return change_id


# The choices in the customer's words (the account center's history), translated where shown.
CHOICE_WORDS = {"do_not_sell_or_share": N_("Do not sell or share my personal information"),
                "limit_sensitive_use": N_("Limit the use of my sensitive personal information")}


def privacy_summary(payload: dict[str, Any]) -> str:
    """A ledger entry of these choices in plain words of the current language."""
    before, after = payload.get("before") or {}, payload.get("after") or {}
    parts = [gettext("turned on \u201c%(choice)s\u201d", choice=gettext(words))
             if after.get(name) else
             gettext("turned off \u201c%(choice)s\u201d", choice=gettext(words))
             for name, words in CHOICE_WORDS.items() if before.get(name) != after.get(name)]
    return "; ".join(parts) or gettext("no change")
