"""Changing the account's address from the account center (issue 12 item 4; security.md
ATO): after a recent sign-in, confirmed from the new address, with a notice and a one-click
undo sent to the old one.

- The request answers the same whether or not another account has the new address; that
  address then gets a mail saying so, instead of a link.
- Links open a page with a button: following a link changes nothing by itself, so a mail
  scanner that fetches it cannot confirm or undo anything.
- The confirmation link works once for CONFIRM_SECONDS; the undo link once for
  UNDO_SECONDS. Undoing restores the old address, ends every session and refresh token of
  the account (whoever changed it is signed out) and points the customer to a password
  reset.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from idp.crypto.handles import digest, new_handle
from idp.notifications.mail import enqueue_mail
from idp.services.accounts.recovery import LinkInvalid
from idp.services.context import Context
from idp.services.signin import security_events, throttle
from idp.services.signin.credential_rules import email_problem
from idp.services.signin.sessions import end_sessions_of_user
from idp.store import users as user_store
from idp.store.models import AccountToken, User

CONFIRM = "email_change"
UNDO = "email_undo"
CONFIRM_SECONDS = 24 * 3600
UNDO_SECONDS = 7 * 86_400


class ChangeRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _link(ctx: Context, path: str, token: str) -> str:
    # In the query, which the access log never writes.
    return f"{ctx.settings.issuer}{path}?{urlencode({'token': token})}"


async def request_change(ctx: Context, user: User, new_email: str) -> str:
    """Mail the new address a confirmation link (or, if another account has it, a notice);
    the normalised address, shown back to the customer either way."""
    problem = email_problem(new_email)
    if problem:
        raise ChangeRefused(problem)
    new = user_store.normalize_email(new_email)
    if new == user.email:
        raise ChangeRefused("That is already your address.")
    await throttle.count_email_change(ctx, user.id)
    now, brand = ctx.now(), ctx.settings.controller_name
    async with ctx.db.transaction() as session:
        if await user_store.find_by_email(session, new) is not None:
            enqueue_mail(session, ctx.settings, new, "email_in_use", {
                "brand": brand, "forgot": f"{ctx.settings.issuer}/account/forgot"}, now)
        else:
            token = new_handle()
            await user_store.add_account_token(session, digest(token), CONFIRM, user.id, now,
                                               now + CONFIRM_SECONDS, {"email": new})
            enqueue_mail(session, ctx.settings, new, "email_change_confirm", {
                "brand": brand, "link": _link(ctx, "/account/email/confirm", token),
                "hours": CONFIRM_SECONDS // 3600}, now)
        security_events.record(session, "email_change_requested", user.id, now)
    ctx.notify_outbox()
    return new


async def pending(ctx: Context, purpose: str, token: str) -> dict[str, Any] | None:
    """What a live confirmation or undo link would do, for the page that asks; nothing is
    used up."""
    if not 0 < len(token) <= 128:
        return None
    async with ctx.db.transaction(read_only=True) as session:
        found = await user_store.account_token(session, digest(token), purpose, ctx.now())
    return found[1] if found is not None else None


async def confirm_change(ctx: Context, token: str) -> str:
    """Switch to the confirmed address; the old one gets a notice with an undo link. Returns
    the new address. LinkInvalid, or ChangeRefused when another account took the address
    meanwhile."""
    if not 0 < len(token) <= 128:
        raise LinkInvalid()
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            user, detail = await _take(session, token, CONFIRM, now)
            new, old = str(detail["email"]), user.email
            other = await user_store.find_by_email(session, new)
            if other is not None and other.id != user.id:
                raise ChangeRefused("Another account uses this address now.")
            user.email, user.email_verified, user.updated_at = new, True, now
            if old:
                undo = new_handle()
                await user_store.add_account_token(session, digest(undo), UNDO, user.id, now,
                                                   now + UNDO_SECONDS, {"email": old})
                enqueue_mail(session, ctx.settings, old, "email_changed_notice", {
                    "brand": ctx.settings.controller_name, "new": new,
                    "link": _link(ctx, "/account/email/undo", undo),
                    "days": UNDO_SECONDS // 86_400}, now)
                await throttle.forget_account(session, old)
            security_events.record(session, "email_changed", user.id, now)
    except IntegrityError:
        # The unique address index: another account took it between the check and commit.
        raise ChangeRefused("Another account uses this address now.") from None
    ctx.notify_outbox()
    return new


async def undo_change(ctx: Context, token: str) -> str:
    """Restore the old address from the notice's link: every session and refresh token of
    the account ends, and a pending change is dropped. Returns the restored address."""
    if not 0 < len(token) <= 128:
        raise LinkInvalid()
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            user, detail = await _take(session, token, UNDO, now)
            restored = str(detail["email"])
            other = await user_store.find_by_email(session, restored)
            if other is not None and other.id != user.id:
                raise ChangeRefused("Another account uses that address now.")
            user.email, user.email_verified, user.updated_at = restored, True, now
            await session.execute(delete(AccountToken).where(
                AccountToken.user_id == user.id, AccountToken.purpose == CONFIRM))
            ended = await end_sessions_of_user(ctx, session, user.id, revoke="refresh")
            security_events.record(session, "email_change_undone", user.id, now,
                                   sessions_ended=len(ended))
    except IntegrityError:
        raise ChangeRefused("Another account uses that address now.") from None
    ctx.notify_outbox()
    return restored


async def _take(session: Any, token: str, purpose: str, now: int
                ) -> tuple[User, dict[str, Any]]:
    taken = await user_store.take_account_token(session, digest(token), purpose, now)
    user = await session.get(User, taken[0], with_for_update=True) if taken else None
    if taken is None or user is None or user.disabled_at is not None or not isinstance(
            taken[1], dict) or "email" not in taken[1]:
        raise LinkInvalid()
    return user, taken[1]
