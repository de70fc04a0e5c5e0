"""Ending browser sessions, whoever asks: the customer (RP-initiated logout, account pages),
an operator, or a password change. One transaction ends the session, revokes what it issued
and writes the back-channel logout tokens to the outbox (OIDC Back-Channel Logout 1.0 §2.5).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest
from idp.locales import N_
from idp.notifications.outbox import enqueue_backchannel_logout
from idp.services.context import Context
from idp.services.signin import change_notice, security_events
from idp.services.signin.authentication import verify_password_login
from idp.services.signin.credential_rules import password_problem
from idp.services.signin.interaction import LoginFailed, start_session
from idp.store import clients as client_store
from idp.store import sessions as session_store
from idp.store import tokens as token_store
from idp.store import users as user_store


async def end_session(ctx: Context, session: AsyncSession, sid: str) -> int:
    """End one session in the caller's unit of work; returns how many apps will be told.

    Refresh tokens issued in the session are revoked, except those granted offline_access:
    the customer asked that app to stay connected beyond the browser session (OIDC Core §11).
    """
    now = ctx.now()
    user_id = await session_store.end_by_sid(session, sid, now)
    if user_id is None:
        return 0
    await token_store.revoke_by_session(session, sid, now)
    told = 0
    for client_id in await session_store.clients_of_session(session, sid):
        client = await client_store.get_client(session, client_id)
        if client is not None and enqueue_backchannel_logout(
            session, client, ctx.settings.issuer, ctx.subject_of(client, user_id), sid, now
        ):
            told += 1
    return told


async def end_user_sessions(ctx: Context, email: str) -> int | None:
    """Sign a customer out everywhere (operator action); None when there is no such account."""
    async with ctx.db.transaction() as session:
        user = await user_store.find_by_email(session, email)
        if user is None:
            return None
        sids = await end_sessions_of_user(ctx, session, user.id, revoke="none")
    ctx.notify_outbox()
    return len(sids)


async def change_password(ctx: Context, email: str, current: str, new: str,
                          previous_cookie: str | None) -> str:
    """Change the password and sign the account out everywhere else (ATO-11): every session
    ends (apps are told by back-channel logout) and every refresh token is revoked, offline
    ones included. This browser continues in a new session; returns its cookie."""
    proof = await verify_password_login(ctx, email, current)
    if proof is None:
        raise LoginFailed(N_("Your current password is not correct."))
    user = proof.user
    problem = password_problem(ctx, new, email)
    if problem:
        raise LoginFailed(problem)
    password_hash = await ctx.passwords.hash(new)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        # The new session keeps what this one proved besides the password (its second
        # factor: amr "otp", "mfa"), so a password change does not downgrade it.
        live = await session_store.find_live_session(
            session, digest(previous_cookie), now) if previous_cookie else None
        kept = list(live.amr) if live is not None and live.user_id == user.id else []
        await user_store.set_password_hash(session, user.id, password_hash, now)
        ended = await end_sessions_of_user(ctx, session, user.id)
        security_events.record(session, security_events.PASSWORD_CHANGED, user.id, now,
                               sessions_ended=len(ended))
        await change_notice.notify(ctx, session, user.id, now, security_events.PASSWORD_CHANGED)
        cookie, _ = await start_session(ctx, session, user.id, previous_cookie,
                                        amr=list(dict.fromkeys(["pwd", *kept])))
    ctx.notify_outbox()
    return cookie


async def end_sessions_of_user(ctx: Context, session: AsyncSession, user_id: str, *,
                               keep_sid: str | None = None,
                               revoke: Literal["refresh", "all", "none"] = "refresh"
                               ) -> list[str]:
    """End every live session of the account but `keep_sid` (apps get back-channel logout
    tokens; each session's own tokens go with it), then revoke the account's refresh tokens,
    offline ones included ("refresh"), or every token it holds ("all"). Returns the ended
    sids. The one way the account is signed out everywhere (ATO-11, requirement 24)."""
    now = ctx.now()
    ended = [sid for sid in await session_store.live_sids_of_user(session, user_id, now)
             if sid != keep_sid]
    for sid in ended:
        await end_session(ctx, session, sid)
    if revoke == "refresh":
        await token_store.revoke_refresh_tokens_of_user(session, user_id, now)
    elif revoke == "all":
        await token_store.revoke_all_of_user(session, user_id, now)
    return ended
