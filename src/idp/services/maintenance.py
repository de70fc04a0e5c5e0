"""Periodic housekeeping: automatic key rotation and purging what has outlived its use."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete

from idp.services.context import Context
from idp.services.signin import throttle
from idp.store import tokens as token_store
from idp.store.models import AuthorizationCode, FederationState, Interaction, UsedAssertion

log = logging.getLogger("idp.maintenance")

# Used codes are kept as tombstones this long after they expire, to recognise a replay.
CODE_TOMBSTONE_SECONDS = 3600


async def run_once(ctx: Context) -> None:
    rotated = await ctx.keys.rotate_if_due()
    if rotated:
        log.info("signing keys rotated; now signing with %s", ", ".join(rotated))
    now = ctx.now()
    async with ctx.db.transaction() as session:
        await session.execute(delete(Interaction).where(Interaction.expires_at <= now))
        await session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at <= now))
        await session.execute(delete(AuthorizationCode).where(
            AuthorizationCode.expires_at <= now - CODE_TOMBSTONE_SECONDS))
        # Expired upstream round trips; each holds an encrypted nonce and PKCE verifier.
        await session.execute(delete(FederationState).where(FederationState.expires_at <= now))
        await throttle.purge(session, now, ctx.settings)
        await token_store.purge_revocations(session, now)


async def run_forever(ctx: Context, interval: float) -> None:
    while True:
        try:
            await run_once(ctx)
        except Exception:
            log.exception("maintenance failed; retrying later")
        await asyncio.sleep(interval)
