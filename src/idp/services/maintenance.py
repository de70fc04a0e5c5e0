"""Periodic housekeeping (automatic key rotation, purging what has outlived its use) and the
state operators watch that only the database knows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, func, select, text

from idp.services.context import Context
from idp.services.profile import access_log, retention
from idp.services.signin import throttle
from idp.store import clients as client_store
from idp.store import device_codes as device_store
from idp.store import dpop as dpop_store
from idp.store import interactions as interaction_store
from idp.store import passkeys as passkey_store
from idp.store import profile as profile_store
from idp.store import tokens as token_store
from idp.store import users as user_store
from idp.store.models import (
    AuthorizationCode,
    FederationState,
    OutboxMessage,
    UsedAssertion,
)

log = logging.getLogger("idp.maintenance")

# Used codes are kept as tombstones this long after they expire, to recognise a replay.
CODE_TOMBSTONE_SECONDS = 3600


# PostgreSQL advisory lock held by the one replica doing the housekeeping at a time.
MAINTENANCE_LOCK = 0x1D9_0A1E


@asynccontextmanager
async def one_replica(ctx: Context) -> AsyncIterator[bool]:
    """True for the one process of all replicas on this PostgreSQL that may do the
    housekeeping now (a session advisory lock, taken without waiting); False for the rest,
    who skip this round. SQLite serves one process: always True."""
    if ctx.db.dialect != "postgresql":
        yield True
        return
    async with ctx.db.engine.connect() as connection:
        taken = bool(await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MAINTENANCE_LOCK}))
        await connection.commit()
        try:
            yield taken
        finally:
            if taken:
                try:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                             {"key": MAINTENANCE_LOCK})
                    await connection.commit()
                except Exception:
                    # Never back into the pool holding the lock: closed, it is released.
                    await connection.invalidate()
                    raise


async def run_once(ctx: Context) -> None:
    async with one_replica(ctx) as chosen:
        if chosen:
            await _housekeeping(ctx)


async def _housekeeping(ctx: Context) -> None:
    rotated = await ctx.keys.rotate_if_due()
    if rotated:
        log.info("signing keys rotated; now signing with %s", ", ".join(rotated))
    now = ctx.now()
    async with ctx.db.transaction() as session:
        # Pending interactions and pushed authorization requests past their time.
        await interaction_store.purge_expired(session, now)
        await session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at <= now))
        await session.execute(delete(AuthorizationCode).where(
            AuthorizationCode.expires_at <= now - CODE_TOMBSTONE_SECONDS))
        # Expired upstream round trips; each holds an encrypted nonce and PKCE verifier.
        await session.execute(delete(FederationState).where(FederationState.expires_at <= now))
        await throttle.purge(session, now, ctx.settings)
        await token_store.purge_revocations(session, now)
        await client_store.purge_initial_tokens(session, now)
        await user_store.purge_account_tokens(session, now)
        await dpop_store.purge(session, now)
        await device_store.purge(session, now - CODE_TOMBSTONE_SECONDS)
        await passkey_store.purge_challenges(session, now)
        # The access log keeps what each app received for as long as the account center shows.
        await profile_store.purge_releases(session, now // access_log.DAY - access_log.KEPT_DAYS)
    # Issue 16 item 6: values whose purposes were withdrawn or ran out of time, each purge
    # recorded in the consent ledger (in a unit of work of its own).
    purged = await retention.purge_expired(ctx)
    if purged:
        log.info("retention: %d profile values purged", purged)


async def run_forever(ctx: Context, interval: float) -> None:
    while True:
        try:
            await run_once(ctx)
        except Exception:
            log.exception("maintenance failed; retrying later")
        await asyncio.sleep(interval)


async def outbox_state(ctx: Context) -> tuple[int, int]:
    """How many outbox messages are neither delivered nor abandoned, and the age in seconds
    of the oldest of them (0 when there is none)."""
    async with ctx.db.transaction(read_only=True) as session:
        row = (await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at))
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.abandoned_at.is_(None))
        )).one()
    backlog, oldest = int(row[0]), row[1]
    return backlog, max(0, ctx.now() - int(oldest)) if oldest is not None else 0
