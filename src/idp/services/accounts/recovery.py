"""Account recovery: a customer who forgot the password asks for a reset link by mail and
chooses a new password with it (security.md ATO, issue 12 item 3).

- The same answer whether or not an account has the address, the same throttling, and the
  same work in the request: the account is looked up later, by the outbox dispatcher.
- The token: 256 random bits, stored as a digest, good for IDP_PASSWORD_RESET_TTL (30 min),
  once, and only the latest one mailed; the link is built from the issuer, never from the
  request's Host.
- A reset never signs the customer in: it ends every session of the account and revokes its
  refresh tokens (apps are told through back-channel logout), clears the sign-in throttle
  of the address and is recorded as a security event. The customer then signs in with the
  new password (and a second factor once there are any).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from idp.crypto.handles import digest, new_handle
from idp.locales import current_locale
from idp.notifications.mail import enqueue_mail, sealer
from idp.notifications.outbox import enqueue
from idp.notifications.senders import Outcome
from idp.services.context import Context
from idp.services.signin import change_notice, security_events, throttle
from idp.services.signin.credential_rules import email_problem, password_problem
from idp.services.signin.interaction import LoginFailed
from idp.services.signin.sessions import end_sessions_of_user
from idp.store import users as user_store
from idp.store.models import OutboxMessage, User

RESET = "password_reset"
RESET_REQUEST = "password_reset_request"  # outbox kind


class LinkInvalid(Exception):
    """The reset link is unknown, used, superseded by a newer one, or expired."""


def reset_link(ctx: Context, token: str) -> str:
    # In the query, which the access log never writes (a path it does).
    return f"{ctx.settings.issuer}/account/reset?{urlencode({'token': token})}"


async def request_reset(ctx: Context, email: str) -> None:
    """Ask for a reset link. The request does the same work whatever the address: it counts
    the attempt and puts the sealed address in the outbox. The dispatcher then looks the
    account up and mails a link if it can sign in (ResetRequestSender), so neither the
    answer nor its timing says whether an account has the address."""
    email = email.strip()
    if email_problem(email):
        return
    await throttle.count_reset_request(ctx, email)
    async with ctx.db.transaction() as session:
        # The mail goes out later, in the language of this request (issue 15 item 1).
        enqueue(session, RESET_REQUEST, None, "reset",
                {"sealed": sealer(ctx.settings).encrypt({"email": email}),
                 "locale": current_locale()}, ctx.now())
    ctx.notify_outbox()


@dataclass(frozen=True)
class ResetRequestSender:
    """Carries out a reset request from the outbox: a link for an account that can sign in
    with the address, nothing for any other."""

    ctx: Context

    async def send(self, message: OutboxMessage) -> Outcome:
        sealed = message.payload.get("sealed")
        if not isinstance(sealed, str):
            return Outcome(False, False, None, "the request has no address")
        email = str(sealer(self.ctx.settings).decrypt(sealed)["email"])
        ctx, now = self.ctx, self.ctx.now()
        async with ctx.db.transaction() as session:
            user = await user_store.find_by_email(session, email)
            if user is None or user.disabled_at is not None or user.email is None:
                return Outcome(True, False, None, None)
            token = new_handle()
            await user_store.add_account_token(session, digest(token), RESET, user.id, now,
                                               now + ctx.settings.password_reset_ttl)
            enqueue_mail(session, ctx.settings, user.email, RESET, {
                "link": reset_link(ctx, token), "brand": ctx.settings.controller_name,
                "minutes": ctx.settings.password_reset_ttl // 60}, now,
                locale=message.payload.get("locale") or user.ui_locale)
            security_events.record(session, "password_reset_requested", user.id, now)
        ctx.notify_outbox()
        return Outcome(True, False, None, None)

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        return {}  # the address is of no further use


async def link_is_live(ctx: Context, token: str) -> bool:
    if not 0 < len(token) <= 128:
        return False
    async with ctx.db.transaction(read_only=True) as session:
        return await user_store.account_token(session, digest(token), RESET,
                                              ctx.now()) is not None


async def reset_password(ctx: Context, token: str, new_password: str) -> None:
    """Set the new password with a live link, using the link up. LoginFailed for a password
    the rules refuse (the link stays usable); LinkInvalid for a link that is not live."""
    if not 0 < len(token) <= 128:
        raise LinkInvalid()
    async with ctx.db.transaction(read_only=True) as session:
        found = await user_store.account_token(session, digest(token), RESET, ctx.now())
        owner = await session.get(User, found[0]) if found else None
    if owner is None:
        raise LinkInvalid()
    problem = password_problem(ctx, new_password, owner.email)
    if problem:
        raise LoginFailed(problem)
    # Hashed before the unit of work: argon2 runs off the event loop, and on SQLite the
    # write lock is not held through it.
    password_hash = await ctx.passwords.hash(new_password)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        taken = await user_store.take_account_token(session, digest(token), RESET, now)
        user = await session.get(User, taken[0], with_for_update=True) if taken else None
        if user is None or user.disabled_at is not None:
            raise LinkInvalid()
        user.password_hash = password_hash
        # The link reached the mailbox: the address is the customer's.
        user.email_verified = True
        user.updated_at = now
        ended = await end_sessions_of_user(ctx, session, user.id, revoke="refresh")
        if user.email:
            await throttle.forget_account(session, user.email)
        security_events.record(session, security_events.PASSWORD_RESET, user.id, now,
                               sessions_ended=len(ended))
        await change_notice.notify(ctx, session, user.id, now, security_events.PASSWORD_RESET)
    ctx.notify_outbox()
