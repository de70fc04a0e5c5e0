"""The customer's copy of their data: the right of access and to data portability (GDPR Art. 15
and 20; CCPA/CPRA right to know), security.md §7 PRIV-04.

One read-only unit of work reads everything, so the document is one consistent picture of the
account. It is versioned (`format`) and machine-readable; every time in it is an RFC 3339
string in UTC ("2025-01-31T12:00:00Z"), null where a time was never set.

Only the customer's data goes out, never what protects it: no password hash (only whether the
account has a password), no token or token digest, no sealed upstream token or its RISC digest,
no browser or session cookie digest, no client secret. Columns are picked one by one below
rather than dumping rows, so a secret column added later stays out until someone adds it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from idp.services.accounts.center import _history_item as history_item
from idp.services.accounts.erasure import AccountNotFound
from idp.services.consent import ledger
from idp.services.context import Context
from idp.services.profile.export import profile_part
from idp.services.signin import security_events
from idp.services.upstream.profile_import import picture_url
from idp.store import factors as factor_store
from idp.store import federation as federation_store
from idp.store import grants as grant_store
from idp.store import passkeys as passkey_store
from idp.store import privacy as privacy_store
from idp.store import users as user_store
from idp.store.models import (
    BrowserSession,
    Client,
    Identity,
    LedgerEntry,
    Picture,
    Purpose,
    SessionClient,
    User,
)

FORMAT = "idp-account-export/1"
Json = dict[str, Any]

__all__ = ["FORMAT", "AccountNotFound", "export_account", "rfc3339"]


def rfc3339(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def export_account(ctx: Context, user_id: str) -> Json:
    """Everything the account holds about the customer, as one JSON-ready document."""
    now = ctx.now()
    async with ctx.db.transaction(read_only=True) as session:
        await _snapshot(session)
        user = await user_store.get_user(session, user_id)
        if user is None:
            raise AccountNotFound(user_id)
        identities = await federation_store.identities_of_user(session, user_id)
        entries = await ledger.entries_for_subject(ctx, session, user_id)
        part = await profile_part(session, user_id)
        return {
            "format": FORMAT,
            "exported_at": rfc3339(now),
            "issuer": ctx.settings.issuer,
            "account": _account(user, identities, part.provenance),
            "sign_in_methods": {
                "password": user.password_hash is not None,
                "identities": [_identity(identity) for identity in identities],
                "two_step": await _two_step(session, user_id),
            },
            "apps": await _apps(session, user),
            "consent_history": [_ledger_entry(entry) for entry in reversed(entries)],
            "sessions": await _sessions(session, user_id, now, identities),
            "security_events": await _security_events(session, user_id),
            "pictures": await _pictures(ctx, session, user_id),
            # Issue 16 item 4: what each app received from the profile, and when.
            "profile_access": part.access,
            # Issue 16 item 5: the CCPA/CPRA choices, with how and when each was set.
            "privacy_choices": await _privacy_choices(session, user_id),
        }


async def _privacy_choices(session: AsyncSession, user_id: str) -> Json:
    row = await privacy_store.find_choices(session, user_id)
    if row is None:  # never chosen: both off
        return {"do_not_sell_or_share": {"on": False, "set_by": None, "set_at": None},
                "limit_sensitive_use": {"on": False, "set_by": None, "set_at": None}}
    return {"do_not_sell_or_share": {"on": row.do_not_sell_or_share,
                                     "set_by": row.do_not_sell_set_by,
                                     "set_at": rfc3339(row.do_not_sell_set_at)},
            "limit_sensitive_use": {"on": row.limit_sensitive_use,
                                    "set_by": row.limit_sensitive_set_by,
                                    "set_at": rfc3339(row.limit_sensitive_set_at)}}


async def _snapshot(session: AsyncSession) -> None:
    """PostgreSQL: every read below sees the same snapshot (READ COMMITTED would give each
    statement its own). SQLite under WAL already reads one snapshot per transaction."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


def _account(user: User, identities: list[Identity], provenance: dict[str, Json]) -> Json:
    return {
        "sub": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
        "disabled_at": rfc3339(user.disabled_at),
        "profile": _profile(user.profile or {}, identities, provenance),
    }


def _profile(values: Json, identities: list[Identity], provenance: dict[str, Json]) -> Json:
    """Each attribute's value with where it came from (`provenance`, issue 16 item 1); where a
    linked identity imported that very value, its source (the provider alias) and the time it
    was imported (issue 4 item 6)."""
    imported: dict[str, tuple[str, int]] = {}
    for identity in identities:
        for name, item in (identity.profile or {}).items():
            if isinstance(item, dict) and item.get("value") == values.get(name):
                at = int(item.get("at") or 0)
                if name not in imported or at > imported[name][1]:
                    imported[name] = (str(item.get("source") or identity.alias), at)
    profile: Json = {}
    for name, value in sorted(values.items()):
        profile[name] = {"value": value}
        if name in provenance:
            profile[name]["provenance"] = provenance[name]
        if name in imported:
            source, at = imported[name]
            profile[name].update(source=source, imported_at=rfc3339(at))
    return profile


def _identity(identity: Identity) -> Json:
    """A linked upstream identity. Never `refresh_token_encrypted` (the sealed upstream token)
    nor `refresh_token_digest` (its RISC identifier)."""
    return {
        "provider": identity.alias,
        "namespace": identity.namespace,
        "subject": identity.subject,
        "email": identity.email,
        "email_verified": identity.email_verified,
        "email_deliverable": identity.email_deliverable,
        "status": identity.status,
        "linked_at": rfc3339(identity.created_at),
        "last_login_at": rfc3339(identity.last_login_at),
        "transfer_sub": identity.transfer_sub,
        "imported_attributes": {
            name: {"value": item.get("value"), "source": item.get("source"),
                   "imported_at": rfc3339(item.get("at"))}
            for name, item in sorted((identity.profile or {}).items())
            if isinstance(item, dict)},
        "import_choices": dict(sorted((identity.import_choices or {}).items())),
    }


async def _apps(session: AsyncSession, user: User) -> list[Json]:
    """Apps holding a live consent. OIDC Core §8: the `sub` an app sees. Every app gets the
    account's public sub (no pairwise subject type is offered), so it is the same for all."""
    grants = await grant_store.live_grants_of_user(session, user.id)
    # Only the two public columns: never `secret_hash` or key material.
    names = {client_id: name for client_id, name in await session.execute(
        select(Client.client_id, Client.name).where(
            Client.client_id.in_([g.client_id for g in grants])))}
    purposes = {row.id: row for row in await session.scalars(select(Purpose))}
    return [{
        "client_id": grant.client_id,
        "name": names.get(grant.client_id, grant.client_id),
        "sub": user.id,
        "scopes": list(grant.scopes),
        "declined_scopes": list(grant.declined_scopes),
        "claims": list(grant.claims),
        "purposes": [_purpose(p, "granted", purposes) for p in grant.purposes] +
                    [_purpose(p, "declined", purposes) for p in grant.declined_purposes],
        "gpc": grant.gpc,
        "channel": grant.channel,
        "granted_at": rfc3339(grant.created_at),
        "updated_at": rfc3339(grant.updated_at),
    } for grant in grants]


def _purpose(answer: Json, choice: str, purposes: dict[str, Purpose]) -> Json:
    """One purpose answer at the version shown; marketing choices are purposes (PRIV-05)."""
    row = purposes.get(str(answer.get("id")))
    return {
        "id": answer.get("id"), "choice": choice, "version": answer.get("version"),
        "title": row.title if row else None,
        "current_version": row.version if row else None,
        "legal_basis": row.legal_basis if row else None,
        "sale_or_share": row.sale_or_share if row else None,
    }


def _ledger_entry(entry: LedgerEntry) -> Json:
    """A consent-ledger entry, oldest first. After an erasure (PRIV-07) only the header is
    left; the entry says so rather than dropping out."""
    item = history_item(entry)
    return {
        "entry_id": entry.entry_id,
        "action": entry.action,
        "client_id": entry.client_id,
        "app": item.app,
        "at": rfc3339(entry.created_at),
        "channel": entry.channel,
        "gpc": entry.gpc,
        "summary": item.summary if entry.payload is not None else None,
        "payload_erased": entry.payload is None,
        "payload": entry.payload,
    }


async def _sessions(session: AsyncSession, user_id: str, now: int,
                    identities: list[Identity]) -> list[Json]:
    """Live browser sessions by their public `sid`; never `id_hash` (the cookie's digest)."""
    rows = list(await session.scalars(select(BrowserSession).where(
        BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None),
        BrowserSession.expires_at > now).order_by(BrowserSession.created_at)))
    apps: dict[str, list[str]] = {}
    for sid, client_id in (await session.execute(
            select(SessionClient.sid, SessionClient.client_id)
            .where(SessionClient.user_id == user_id)
            .order_by(SessionClient.created_at, SessionClient.client_id))):
        apps.setdefault(sid, []).append(client_id)
    aliases = {identity.id: identity.alias for identity in identities}
    return [{
        "sid": row.sid,
        "auth_time": rfc3339(row.auth_time),
        "amr": list(row.amr),
        "acr": row.acr,
        # The upstream this session signed in with; None for our own sign-in (see `amr`).
        "provider": aliases.get(row.identity_id) if row.identity_id else None,
        "apps": apps.get(row.sid, []),
        "created_at": rfc3339(row.created_at),
        "expires_at": rfc3339(row.expires_at),
    } for row in rows]


async def _two_step(session: AsyncSession, user_id: str) -> Json:
    """Whether an authenticator app is set up, since when, and how many recovery codes are
    left: never the secret or a code."""
    factor = await factor_store.totp_factor(session, user_id)
    return {"authenticator_app": factor is not None,
            "since": rfc3339(factor.created_at) if factor else None,
            "recovery_codes_left": await factor_store.count_unused_recovery_codes(
                session, user_id) if factor else 0,
            # Names and dates only: never a credential id or a public key.
            "passkeys": [{"name": p.name, "created_at": rfc3339(p.created_at),
                          "last_used_at": rfc3339(p.last_used_at) if p.last_used_at else None,
                          "synced": p.device_type == "multi_device"}
                         for p in await passkey_store.passkeys_of_user(session, user_id)]}


async def _security_events(session: AsyncSession, user_id: str) -> list[Json]:
    rows = reversed(await security_events.events_of_user(session, user_id, limit=None))
    return [{"kind": row.kind, "at": rfc3339(row.created_at), "detail": dict(row.detail or {})}
            for row in rows]


async def _pictures(ctx: Context, session: AsyncSession, user_id: str) -> list[Json]:
    """Copied profile pictures by their URL on our origin; the bytes are served there."""
    rows = (await session.execute(
        select(Picture.id, Picture.source, Picture.content_type, Picture.created_at)
        .where(Picture.user_id == user_id).order_by(Picture.created_at))).all()
    return [{"url": picture_url(ctx, picture_id), "source": source,
             "content_type": content_type, "copied_at": rfc3339(created_at)}
            for picture_id, source, content_type, created_at in rows]
