"""Deleting an account: the right to erasure (GDPR Art. 17), asked by the customer in the
account center or by an operator, and the upstream providers' deletion duties (federation.md
§9 requirement 31, §2.8 Apple's account-deletion duty, §1.7 Google revoke, §3 Facebook
permissions).

One unit of work, in this order:
1. every linked upstream identity gets an `upstream_revoke` outbox message (the sealed token
   or the Facebook ASID; never a clear token), delivered by the dispatcher with retries;
2. every connected app's grant is withdrawn as when the customer disconnects it (ledger entry,
   tokens revoked, back-channel logout and CAEP events), then every browser session ends and
   every remaining token is revoked;
3. the consent ledger keeps its entries as anonymised proof: their payloads (the personal
   data) are erased, which the hash chain allows (PRIV-07);
4. what no foreign key removes is deleted (interactions, link states, earlier security events),
   `account_deleted` is recorded with the user id only, and the user row goes: identities,
   pictures, sessions, grants, codes and token records follow by ON DELETE CASCADE. Outbox
   messages reference apps, not the account, so the notifications just written survive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.services.consent import ledger
from idp.services.consent.grants import withdraw_in
from idp.services.context import Context
from idp.services.signin import security_events, throttle
from idp.services.signin.sessions import end_sessions_of_user
from idp.services.upstream.revocation_sender import enqueue_upstream_revocations
from idp.store import clients as client_store
from idp.store import federation as federation_store
from idp.store import grants as grant_store
from idp.store import users as user_store
from idp.store.models import (
    BrowserSession,
    FederationState,
    Interaction,
    LedgerEntry,
    SecurityEvent,
    User,
)

log = logging.getLogger("idp.erasure")
Initiator = Literal["customer", "operator"]


class AccountNotFound(Exception):
    """No account has this id (already deleted, or never existed)."""


@dataclass(frozen=True)
class Deletion:
    user_id: str
    apps_disconnected: int
    sessions_ended: int
    upstream_revocations: int


@dataclass(frozen=True)
class DeletionPreview:
    """What the confirmation page tells the customer will happen."""

    apps: list[str]
    upstreams: list[str]


async def find_account(ctx: Context, email_or_id: str) -> str | None:
    """The user id of an account named by its email address or its id (operator CLI)."""
    async with ctx.db.transaction() as session:
        user = await user_store.find_by_email(session, email_or_id) if "@" in email_or_id \
            else await user_store.get_user(session, email_or_id.strip())
    return user.id if user is not None else None


async def preview(ctx: Context, user_id: str) -> DeletionPreview:
    async with ctx.db.transaction() as session:
        grants = await grant_store.live_grants_of_user(session, user_id)
        apps = [client.name for grant in grants
                if (client := await client_store.get_client(session, grant.client_id))]
        identities = await federation_store.identities_of_user(session, user_id)
    return DeletionPreview(apps, sorted({i.alias.capitalize() for i in identities}))


async def delete_account(ctx: Context, user_id: str, *, initiator: Initiator) -> Deletion:
    async with ctx.db.transaction() as session:
        user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
        if user is None:
            raise AccountNotFound(user_id)
        now = ctx.now()
        identities = await federation_store.identities_of_user(session, user_id)
        revocations = await enqueue_upstream_revocations(session, identities, now)
        apps = await _withdraw_grants(ctx, session, user_id)
        # Tokens left after the grants were withdrawn go with the account row (cascade).
        ended = len(await end_sessions_of_user(ctx, session, user_id, revoke="none"))
        await _erase_ledger_payloads(ctx, session, user_id)
        await _delete_unlinked_rows(session, user_id)
        if user.email:  # the throttle counter keyed by a digest of the address
            await throttle.forget_account(session, user.email)
        security_events.record(session, security_events.ACCOUNT_DELETED, user_id, now,
                               initiator=initiator, apps_disconnected=apps,
                               upstream_revocations=revocations)
        await session.flush()
        await session.execute(delete(User).where(User.id == user_id))
    ctx.notify_outbox()
    log.info("account deleted (%s): %d apps disconnected, %d upstream revocations queued",
             initiator, apps, revocations)
    return Deletion(user_id, apps, ended, revocations)


async def _withdraw_grants(ctx: Context, session: AsyncSession, user_id: str) -> int:
    """As when the customer disconnects each app: the apps are told (back-channel logout,
    CAEP session-revoked and token-claims-change) and everything issued under it is revoked."""
    grants = await grant_store.live_grants_of_user(session, user_id)
    for grant in grants:
        await withdraw_in(ctx, session, user_id, grant.client_id, grant.channel,
                          method="account deletion")
    return len(grants)


async def _erase_ledger_payloads(ctx: Context, session: AsyncSession, user_id: str) -> None:
    """PRIV-07: the chain covers each payload's digest, not the payload, so setting payloads
    to SQL NULL (the one update the append-only triggers allow) keeps `ledger verify` passing.
    The header stays: a pseudonymous subject reference, the app, the action and its time."""
    await session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.subject_ref == ledger.subject_ref(ctx, user_id),
               LedgerEntry.payload.is_not(None))
        .values(payload=null())  # SQL NULL, not the JSON `null` the triggers would refuse
        .execution_options(synchronize_session=False))


async def _delete_unlinked_rows(session: AsyncSession, user_id: str) -> None:
    """Rows that hold the customer's data without a foreign key to the account."""
    sids = list(await session.scalars(
        select(BrowserSession.sid).where(BrowserSession.user_id == user_id)))
    if sids:
        # Including every interaction holding a pending import of the account's identities:
        # an import is offered only to the interaction that identity's login just signed in.
        await session.execute(delete(Interaction).where(Interaction.session_sid.in_(sids)))
    # Identities waiting for this account to prove itself (requirement 19), encrypted.
    await session.execute(delete(FederationState).where(FederationState.user_id == user_id))
    # Earlier events name the account's sign-in methods; only the deletion itself is kept.
    await session.execute(delete(SecurityEvent).where(SecurityEvent.user_id == user_id))
