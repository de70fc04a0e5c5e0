"""Upstream providers, linked identities and upstream login states."""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

from sqlalchemy import Table, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import BrowserSession, FederationState, Identity, Upstream
from idp.store.prepared import Connection, Prepared, detached


async def get_upstream(session: AsyncSession, alias: str) -> Upstream | None:
    if not alias or len(alias) > 32:
        return None
    return await session.get(Upstream, alias)


async def list_upstreams(session: AsyncSession) -> list[Upstream]:
    return list(await session.scalars(select(Upstream).order_by(Upstream.alias)))


_UPSTREAMS = cast(Table, Upstream.__table__)
_SHOWN = ("alias", "type", "config")
_ENABLED = Prepared(select(*(_UPSTREAMS.c[name] for name in _SHOWN))
                    .where(_UPSTREAMS.c.enabled == true()).order_by(_UPSTREAMS.c.alias))


async def enabled_upstreams(connection: Connection) -> list[Upstream]:
    """The enabled upstreams' alias, type and settings (detached, read-only objects with
    nothing else loaded: no secrets), by alias; the sign-in page's read."""
    return [detached(Upstream, "", _SHOWN, values)
            for values in await _ENABLED.all(connection, {})]


async def find_identity(session: AsyncSession, namespace: str, subject: str) -> Identity | None:
    return await session.scalar(select(Identity).where(
        Identity.namespace == namespace, Identity.subject == subject))


async def identities_of_user(session: AsyncSession, user_id: str) -> list[Identity]:
    return list(await session.scalars(
        select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at)))


async def claim_state(session: AsyncSession, state_hash: str, purposes: Collection[str],
                      now: int) -> FederationState | None:
    """Use a state once, if it is for one of `purposes`: one conditional update, so a replay
    or a race finds nothing."""
    result = await session.execute(
        update(FederationState)
        .where(FederationState.state_hash == state_hash,
               FederationState.purpose.in_(purposes),
               FederationState.used_at.is_(None), FederationState.expires_at > now)
        .values(used_at=now)
        .returning(FederationState)
    )
    return result.scalar_one_or_none()


async def sids_of_identity(session: AsyncSession, identity_id: str) -> list[str]:
    """Every browser session signed in with this upstream identity, ended ones included."""
    return list(await session.scalars(
        select(BrowserSession.sid).where(BrowserSession.identity_id == identity_id)))
