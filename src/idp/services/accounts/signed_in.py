"""Where the customer is signed in (issue 12 item 8; security.md ATO-14 "list & kill
sessions"): each live browser session of the account with its device, network, sign-in time
and last use, and ending one or all the others. Ending goes through
`signin.sessions.end_session`, so the apps that got tokens in a session are told by
back-channel logout. Refresh tokens granted offline_access belong to the connected app, not
to a browser session, and stay (the account center's connected apps end those)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest
from idp.domain import SessionInfo
from idp.locales.devices import UNKNOWN
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.signin.session_devices import SESSION_ENDED, request_device
from idp.services.signin.sessions import end_session, end_sessions_of_user
from idp.store.models import BrowserSession

NOT_YOURS = "This session is not one of yours, or it has already ended."


@dataclass(frozen=True)
class SessionView:
    sid: str
    device: str
    network: str | None
    signed_in_at: int
    last_used_at: int
    current: bool  # this browser


async def live_sessions(ctx: Context, user_id: str, session_cookie: str | None
                        ) -> list[SessionView]:
    """The account's live sessions, this browser's first, then by last use."""
    mine = digest(session_cookie) if session_cookie else ""
    async with ctx.db.transaction(read_only=True) as session:
        rows = list(await session.scalars(select(BrowserSession).where(
            BrowserSession.user_id == user_id, BrowserSession.ended_at.is_(None),
            BrowserSession.expires_at > ctx.now())))
    views = [SessionView(row.sid, row.device or UNKNOWN, row.network, row.auth_time,
                         row.last_used_at or row.created_at,
                         hmac.compare_digest(row.id_hash, mine)) for row in rows]
    return sorted(views, key=lambda v: (not v.current, -v.last_used_at, v.sid))


async def end_one(ctx: Context, info: SessionInfo, sid: str) -> int:
    """End another session of the signed-in account; returns how many apps are told.
    InvalidRequest for a sid that is not a live session of this account (or is this one:
    signing out is the way to end it)."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        row = await session.scalar(select(BrowserSession).where(BrowserSession.sid == sid))
        if (row is None or not hmac.compare_digest(row.user_id, info.user_id)
                or row.ended_at is not None or row.expires_at <= now or row.sid == info.sid):
            raise errors.InvalidRequest(NOT_YOURS, redirectable=False)
        ended = (row.device, row.network)
        told = await end_session(ctx, session, sid)
        _record_ended(session, info.user_id, now, 1, ended)
    ctx.notify_outbox()
    return told


async def end_others(ctx: Context, info: SessionInfo) -> int:
    """End every session of the account but this browser's; returns how many ended."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        ended = await end_sessions_of_user(ctx, session, info.user_id, keep_sid=info.sid,
                                           revoke="none")
        if ended:
            _record_ended(session, info.user_id, now, len(ended), None)
    ctx.notify_outbox()
    return len(ended)


def _record_ended(session: AsyncSession, user_id: str, now: int, count: int,
                  ended: tuple[str | None, str | None] | None) -> None:
    """The security event: from which device the customer ended which one."""
    device, network = request_device()
    detail: dict[str, object] = {"device": device, "network": network, "sessions_ended": count}
    if ended is not None:
        detail["ended_device"], detail["ended_network"] = ended
    security_events.record(session, SESSION_ENDED, user_id, now, **detail)
