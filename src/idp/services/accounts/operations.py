"""Operators' use cases on what the service runs on (the admin API): grants, the outbox and
the signing keys. Each change is in the admin audit log."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update

from idp.crypto.keys import SUPPORTED_ALGS
from idp.notifications.outbox import undelivered
from idp.services import InvalidInput, NotFound
from idp.services.accounts import audit
from idp.services.consent.grants import withdraw
from idp.services.context import Context
from idp.store import keys as key_store
from idp.store.models import Grant, OutboxMessage

MAX_PAGE = 200


@dataclass(frozen=True)
class GrantView:
    id: str
    user_id: str
    client_id: str
    scopes: list[str]
    purposes: list[dict[str, Any]]
    channel: str
    created_at: int
    updated_at: int
    revoked_at: int | None


async def grants(ctx: Context, *, user_id: str | None, client_id: str | None,
                 live_only: bool = True, limit: int = 50, after: str | None = None
                 ) -> list[GrantView]:
    """One customer's grants or one app's, in id order, `after` the last id of a page."""
    if not user_id and not client_id:
        raise InvalidInput("name a user_id or a client_id")
    query = select(Grant).order_by(Grant.id).limit(max(1, min(limit, MAX_PAGE)))
    if user_id:
        query = query.where(Grant.user_id == user_id[:64])
    if client_id:
        query = query.where(Grant.client_id == client_id[:64])
    if live_only:
        query = query.where(Grant.revoked_at.is_(None))
    if after:
        query = query.where(Grant.id > after[:64])
    async with ctx.db.transaction(read_only=True) as session:
        return [GrantView(g.id, g.user_id, g.client_id, list(g.scopes), list(g.purposes),
                          g.channel, g.created_at, g.updated_at, g.revoked_at)
                for g in await session.scalars(query)]


async def revoke_grant(ctx: Context, grant_id: str, *, actor: str) -> None:
    """As if the customer disconnected the app: the grant ends, its tokens are revoked, the
    app's sessions end and it is told; the consent ledger records the withdrawal."""
    async with ctx.db.transaction(read_only=True) as session:
        grant = await session.get(Grant, grant_id[:64])
        if grant is None or grant.revoked_at is not None:
            raise NotFound(f"no live grant {grant_id[:64]}")
        user_id, client_id = grant.user_id, grant.client_id
    result = await withdraw(ctx, user_id, client_id, channel="admin", method="operator")
    async with ctx.db.transaction() as session:
        audit.record(session, ctx.now(), actor, "grant.revoke", "grant", grant_id, None,
                     {"change_id": result.change_id})


async def failed_deliveries(ctx: Context, kind: str | None = None) -> list[dict[str, Any]]:
    async with ctx.db.transaction(read_only=True) as session:
        return [asdict(row) for row in await undelivered(session, kind)]


async def retry_delivery(ctx: Context, message_id: str, *, actor: str) -> None:
    """Deliver again now: a message abandoned after its retries, or one waiting for its next
    attempt. A delivered message is never sent twice."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        message = await session.get(OutboxMessage, message_id[:64], with_for_update=True)
        if message is None:
            raise NotFound(f"no outbox message {message_id[:64]}")
        if message.delivered_at is not None:
            raise InvalidInput("the message was delivered; it is not sent again")
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message.id)
                              .values(abandoned_at=None, next_attempt_at=now,
                                      locked_until=None))
        audit.record(session, now, actor, "outbox.retry", "outbox_message", message.id,
                     None, None)
    ctx.notify_outbox()


async def signing_keys(ctx: Context) -> list[dict[str, Any]]:
    async with ctx.db.transaction(read_only=True) as session:
        rows = await key_store.all_keys(session)
    return [{"kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
             "retired_at": r.retired_at, "published_until": r.publish_until} for r in rows]


async def rotate_keys(ctx: Context, algs: list[str] | None, *, actor: str) -> list[str]:
    """The next keys start signing, the current ones retire (published until their tokens
    expire), new next keys are published; every replica uses them within a second."""
    chosen = tuple(algs or SUPPORTED_ALGS)
    unknown = [alg for alg in chosen if alg not in SUPPORTED_ALGS]
    if unknown:
        raise InvalidInput(f"alg must be one of {', '.join(SUPPORTED_ALGS)}")
    active = await ctx.keys.rotate(chosen)
    async with ctx.db.transaction() as session:
        audit.record(session, ctx.now(), actor, "keys.rotate", "signing_keys",
                     ",".join(chosen), None, {"active": active})
    return active
