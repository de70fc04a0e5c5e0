"""Consent use cases: give it on the consent page, change it or withdraw it from the account
center or the Grant API. Each runs in the caller's unit of work (or its own) and, in that one
transaction, updates the grant, appends the ledger, revokes what the old consent covered and
writes the apps' notifications to the outbox (ARCHITECTURE.md, data flow 4).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, delete, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import new_handle
from idp.domain import ClientConfig
from idp.locales import N_, current_locale
from idp.notifications.outbox import (
    CLAIMS_CHANGE_EVENT,
    SESSION_REVOKED_EVENT,
    enqueue_backchannel_logout,
    enqueue_security_event,
)
from idp.protocol.consent import ConsentAsk, GrantView, PurposeInfo, consent_claim, versions
from idp.protocol.privacy import NO_STANDING, Standing
from idp.services.consent import ledger
from idp.services.consent.texts import purpose_record, words_in
from idp.services.context import Context
from idp.store import clients as client_store
from idp.store import grants as grant_store
from idp.store import pairwise as pairwise_store
from idp.store import privacy as privacy_store
from idp.store import purposes as purpose_store
from idp.store import tokens as token_store
from idp.store.models import Grant, OutboxMessage, SessionClient


def grant_view(grant: Grant | None) -> GrantView | None:
    if grant is None or grant.revoked_at is not None:
        return None
    return GrantView(
        scopes=frozenset(grant.scopes), claims=frozenset(grant.claims),
        purposes=versions(grant.purposes), declined_scopes=frozenset(grant.declined_scopes),
        declined_purposes=versions(grant.declined_purposes),
    )


def grant_consent_claim(grant: Grant, scopes: Iterable[str] | None = None,
                        standing: Standing = NO_STANDING) -> dict[str, Any]:
    return consent_claim(grant.id, grant.scopes if scopes is None else scopes, grant.purposes,
                         grant.created_at, grant.updated_at, grant.gpc, standing)


def channel_of(client: ClientConfig) -> str:
    return "mobile" if client.application_type == "native" else "web"


def _snapshot(grant: Grant | None) -> dict[str, Any]:
    if grant is None or grant.revoked_at is not None:
        return {"scopes": [], "purposes": [], "claims": []}
    return {"scopes": list(grant.scopes), "purposes": list(grant.purposes),
            "claims": list(grant.claims)}


def _shown_on_page(ctx: Context, shown: tuple[str, str] | None) -> dict[str, Any]:
    if shown is None:
        return {"language": ctx.settings.default_locale}
    return {"language": shown[0], "texts_digest": shown[1]}


async def _in_language(ctx: Context, session: AsyncSession, purposes: tuple[PurposeInfo, ...]
                       ) -> tuple[tuple[PurposeInfo, ...], str]:
    """The purposes in the words of the customer's language (a change made on a page in it),
    and the language, for the ledger."""
    words = await words_in(ctx, session, current_locale())
    return tuple(map(words.purpose, purposes)), words.locale


def _payload(client: ClientConfig, user_id: str, before: dict[str, Any], grant: Grant,
             change_id: str, purposes: tuple[PurposeInfo, ...], language: str | None = None,
             **extra: Any) -> dict[str, Any]:
    return {
        "language": language,
        "user_id": user_id,
        "client_id": client.client_id,
        "client_name": client.name,
        "change_id": change_id,
        "before": before,
        "after": _snapshot(grant),
        "declined": {"scopes": list(grant.declined_scopes),
                     "purposes": list(grant.declined_purposes)},
        # The wording and legal basis agreed to, as shown, for proof of consent (PRIV-05).
        # In the language shown, with its version and digest (issue 15 item 4).
        "policy": [purpose_record(p, language) for p in purposes],
        **extra,
    }


async def record_consent(ctx: Context, session: AsyncSession, *, user_id: str,
                         client: ClientConfig, ask: ConsentAsk, accepted_scopes: Iterable[str],
                         accepted_purposes: Iterable[str], gpc: bool,
                         extra: dict[str, Any] | None = None,
                         shown: tuple[str, str] | None = None) -> Grant:
    """The customer answered the consent page. Required items are always part of the answer
    (the page cannot submit without them); optional ones are granted or declined one by one.
    `extra` goes into the ledger payload (the profile import answer, federation.md §9 req 38);
    `shown`: the page's language and the digest of its consent texts (`ask.purposes` are in
    that language: idp.services.consent.texts)."""
    now = ctx.now()
    accepted = set(accepted_scopes) | set(ask.required_scopes)
    chosen = set(accepted_purposes) | {p.id for p in ask.purposes if p.required}
    grant = await grant_store.find_grant(session, user_id, client.client_id)
    before = _snapshot(grant)
    action = "grant" if grant is None or grant.revoked_at is not None else "reconsent"
    if grant is None:
        grant = Grant(id=new_handle(16), user_id=user_id, client_id=client.client_id,
                      scopes=[], claims=[], purposes=[], declined_scopes=[],
                      declined_purposes=[], gpc=gpc, channel=channel_of(client),
                      created_at=now, updated_at=now, revoked_at=None)
        session.add(grant)
    elif grant.revoked_at is not None:
        grant.scopes, grant.claims, grant.purposes = [], [], []
        grant.declined_scopes, grant.declined_purposes = [], []
        grant.revoked_at = None
        grant.created_at = now
    asked = set(ask.scopes)
    grant.scopes = _ordered([*(s for s in grant.scopes if s not in asked),
                             *(s for s in ask.scopes if s in accepted)])
    grant.declined_scopes = _ordered([*(s for s in grant.declined_scopes if s not in asked),
                                      *(s for s in ask.scopes if s not in accepted)])
    grant.claims = sorted(set(grant.claims) | set(ask.claims))
    asked_purposes = {p.id for p in ask.purposes}
    grant.purposes = [p for p in grant.purposes if p["id"] not in asked_purposes] + [
        {"id": p.id, "version": p.version} for p in ask.purposes if p.id in chosen]
    grant.declined_purposes = [p for p in grant.declined_purposes
                               if p["id"] not in asked_purposes] + [
        {"id": p.id, "version": p.version} for p in ask.purposes if p.id not in chosen]
    grant.gpc = gpc
    grant.channel = channel_of(client)
    grant.updated_at = now
    await session.flush()
    if client.sector_identifier is not None:
        # The way back from the pairwise `sub` this client will be given (OIDC Core §8.1).
        await pairwise_store.remember(session, client.sector_identifier,
                                      ctx.subject_of(client, user_id), user_id, now)
    change_id = new_handle(16)
    await ledger.append(
        ctx, session, grant_id=grant.id, client_id=client.client_id, user_id=user_id,
        action=action, channel=grant.channel, gpc=gpc,
        payload=_payload(client, user_id, before, grant, change_id, ask.purposes,
                         method="consent page", **_shown_on_page(ctx, shown), **(extra or {})),
    )
    removed = _removed(before, grant)
    if removed and action == "reconsent":
        # Narrower than before: what the old consent covered stops working everywhere.
        await _apply_change(ctx, session, client, grant, user_id, change_id)
    return grant


def _ordered(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _removed(before: dict[str, Any], grant: Grant) -> bool:
    now_scopes = set(grant.scopes)
    now_purposes = {p["id"] for p in grant.purposes}
    return bool(set(before["scopes"]) - now_scopes or
                {p["id"] for p in before["purposes"]} - now_purposes)


async def _apply_change(ctx: Context, session: AsyncSession, client: ClientConfig, grant: Grant,
                        user_id: str, change_id: str) -> None:
    now = ctx.now()
    await token_store.revoke_by_grant(session, grant.id, now)
    standing = await privacy_store.standing_of_user(session, user_id)
    enqueue_security_event(
        session, client, ctx.settings.issuer, ctx.subject_of(client, user_id),
        CLAIMS_CHANGE_EVENT, {"claims": {"consent": grant_consent_claim(grant, None, standing)},
                              "initiating_entity": "user"},
        now, change_id,
    )


@dataclass(frozen=True)
class ChangeResult:
    change_id: str
    grant_id: str


async def change_choices(ctx: Context, user_id: str, client_id: str,
                         optional_scopes: Iterable[str], optional_purposes: Iterable[str],
                         channel: str = "web") -> ChangeResult:
    """The customer changed an app's optional choices in the account center."""
    change_id = new_handle(16)
    async with ctx.db.transaction() as session:
        grant, client = await _live_grant(session, user_id, client_id)
        purposes = await purpose_store.purposes_of_client(session, client_id)
        await _set_choices(ctx, session, grant, client, purposes, set(optional_scopes),
                           set(optional_purposes), change_id, channel)
    ctx.notify_outbox()
    return ChangeResult(change_id, grant.id)


async def change_purpose_everywhere(ctx: Context, user_id: str, purpose_id: str,
                                    allowed: bool, channel: str = "web") -> str:
    """One choice about a purpose, applied to every connected app that asks for it as an
    optional purpose, in one transaction; returns the change id the apps' deliveries share."""
    change_id = new_handle(16)
    async with ctx.db.transaction() as session:
        for grant in await grant_store.live_grants_of_user(session, user_id):
            client = await client_store.get_client(session, grant.client_id)
            purposes = await purpose_store.purposes_of_client(session, grant.client_id)
            if client is None or not any(p.id == purpose_id and not p.required
                                         for p in purposes):
                continue
            agreed = set(versions(grant.purposes))
            chosen = agreed | {purpose_id} if allowed else agreed - {purpose_id}
            if chosen == agreed:
                continue
            await _set_choices(ctx, session, grant, client, purposes, set(grant.scopes),
                               chosen, change_id, channel)
    ctx.notify_outbox()
    return change_id


async def _set_choices(ctx: Context, session: AsyncSession, grant: Grant, client: ClientConfig,
                       purposes: tuple[PurposeInfo, ...], keep: set[str], chosen: set[str],
                       change_id: str, channel: str) -> None:
    """Set an app's optional choices; required items stay. Ledger, revocation, events."""
    before = _snapshot(grant)
    optional = set(client.optional_scopes)
    granted_optional = [s for s in [*grant.scopes, *grant.declined_scopes] if s in optional]
    grant.scopes = _ordered([*(s for s in grant.scopes if s not in optional),
                             *(s for s in granted_optional if s in keep)])
    grant.declined_scopes = _ordered(s for s in granted_optional if s not in keep)
    answered = {**versions(grant.declined_purposes), **versions(grant.purposes)}
    grant.purposes = [{"id": p.id, "version": answered.get(p.id, p.version)}
                      for p in purposes if p.id in answered and (p.required or p.id in chosen)]
    grant.declined_purposes = [{"id": p.id, "version": answered.get(p.id, p.version)}
                               for p in purposes
                               if p.id in answered and not p.required and p.id not in chosen]
    grant.updated_at = ctx.now()
    await ledger.append(
        ctx, session, grant_id=grant.id, client_id=client.client_id, user_id=grant.user_id,
        action="change", channel=channel, gpc=grant.gpc,
        payload=_payload(client, grant.user_id, before, grant, change_id,
                         *await _in_language(ctx, session, purposes), method="account center"),
    )
    await _apply_change(ctx, session, client, grant, grant.user_id, change_id)


async def withdraw(ctx: Context, user_id: str, client_id: str, channel: str = "web",
                   method: str = "account center") -> ChangeResult:
    """Disconnect the app entirely: the grant ends, every token of it is revoked, the app's
    sessions end (it is told by back-channel logout and a session-revoked event)."""
    async with ctx.db.transaction() as session:
        result = await withdraw_in(ctx, session, user_id, client_id, channel, method)
    ctx.notify_outbox()
    return result


async def withdraw_in(ctx: Context, session: AsyncSession, user_id: str, client_id: str,
                      channel: str, method: str) -> ChangeResult:
    now = ctx.now()
    grant, client = await _live_grant(session, user_id, client_id)
    purposes = await purpose_store.purposes_of_client(session, client_id)
    before = _snapshot(grant)
    grant.revoked_at = now
    grant.updated_at = now
    grant.scopes, grant.claims, grant.purposes = [], [], []
    grant.declined_scopes, grant.declined_purposes = [], []
    change_id = new_handle(16)
    await ledger.append(
        ctx, session, grant_id=grant.id, client_id=client_id, user_id=user_id,
        action="withdraw", channel=channel, gpc=grant.gpc,
        payload=_payload(client, user_id, before, grant, change_id,
                         *await _in_language(ctx, session, purposes), method=method),
    )
    await token_store.revoke_by_grant(session, grant.id, now)
    sids = list(await session.scalars(select(SessionClient.sid).where(
        SessionClient.client_id == client_id, SessionClient.user_id == user_id)))
    sub = ctx.subject_of(client, user_id)
    for sid in sids:
        enqueue_backchannel_logout(session, client, ctx.settings.issuer, sub, sid, now,
                                   change_id)
        enqueue_security_event(session, client, ctx.settings.issuer, sub,
                               SESSION_REVOKED_EVENT, {"initiating_entity": "user"}, now,
                               change_id)
    await session.execute(delete(SessionClient).where(
        SessionClient.client_id == client_id, SessionClient.user_id == user_id))
    standing = await privacy_store.standing_of_user(session, user_id)
    enqueue_security_event(
        session, client, ctx.settings.issuer, sub, CLAIMS_CHANGE_EVENT,
        {"claims": {"consent": grant_consent_claim(grant, None, standing)},
         "initiating_entity": "user"},
        now, change_id,
    )
    return ChangeResult(change_id, grant.id)


async def _live_grant(session: AsyncSession, user_id: str, client_id: str
                      ) -> tuple[Grant, ClientConfig]:
    grant = await grant_store.find_grant(session, user_id, client_id)
    client = await client_store.get_client(session, client_id)
    if grant is None or grant.revoked_at is not None or client is None:
        raise errors.InvalidRequest(N_("This app is not connected to your account"),
                                    redirectable=False)
    return grant, client


@dataclass(frozen=True)
class DeliveryStatus:
    delivered: int
    total: int
    pending: list[str]  # names of the apps not told yet


async def delivery_status(session: AsyncSession, change_id: str) -> DeliveryStatus:
    """How far a change has reached the apps: "applied to 3 of 3 apps"."""
    # Apps' messages only, so the client id is never NULL (typed so for mypy).
    app_client_id = type_coerce(OutboxMessage.client_id, String)
    rows = (await session.execute(
        select(app_client_id, func.min(OutboxMessage.delivered_at).is_not(None))
        .where(OutboxMessage.change_id == change_id, OutboxMessage.client_id.is_not(None))
        .group_by(OutboxMessage.client_id)
    )).all()
    pending: list[str] = []
    for client_id, done in rows:
        if not done:
            client = await client_store.get_client(session, client_id)
            pending.append(client.name if client else client_id)
    return DeliveryStatus(len(rows) - len(pending), len(rows), sorted(pending))
