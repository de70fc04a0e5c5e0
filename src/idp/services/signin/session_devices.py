"""What a new browser session records about where it signed in, and the notice a customer gets
when an unrecognised device signs in to the account (issue 12 item 8; security.md ATO-15).

- The device: a readable name from the User-Agent (`user_agents.describe`, our own words only;
  the header itself is never stored). The network: the client's /24 or /64, as the throttle
  counts it (no geolocation service).
- Recognised: the browser presented a valid device-cookie entry for the account
  (`devices.trusted_device`), or replaced a session of the same account (a re-authentication
  in a browser already signed in). Every sign-in, by password, upstream or second factor, then
  remembers the browser, so the first session of an account is what makes it known.
- The notice: for an unrecognised device, unless this is the account's very first sign-in
  (just registered). Written to the outbox in the sign-in's own unit of work. At most one per
  account and device name an hour, and NOTICES_PER_HOUR per account whatever the names, so an
  attacker holding the password cannot flood the mailbox by rotating User-Agents; the
  security timeline still lists every sign-in.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from sqlalchemy import bindparam, select

from idp.crypto.handles import digest
from idp.notifications.mail import enqueue_mail
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.signin.devices import remember, request_devices, trusted_device
from idp.services.signin.throttle import account_key, request_source, source_key
from idp.services.signin.user_agents import describe
from idp.store import throttles as throttle_store
from idp.store.models import BrowserSession, SecurityEvent, User
from idp.store.prepared import Connection, Prepared, orm_session

# The User-Agent of the request being served (at most MAX_AGENT_LENGTH characters), set by
# `idp.web.source.ClientSource`.
request_agent: ContextVar[str | None] = ContextVar("request_agent", default=None)

SIGNED_IN = "signed_in"
SIGN_IN_FAILED = "sign_in_failed"
SESSION_ENDED = "session_ended"
NOTICE_TEMPLATE = "new_device_notice"
NOTICE_WINDOW_SECONDS = 3600
NOTICES_PER_HOUR = 3


def request_device() -> tuple[str, str | None]:
    """The device name and network of the request being served."""
    network = source_key(request_source.get())
    return describe(request_agent.get()), network.removeprefix("net:") if network else None


def sign_in_method(amr: list[str]) -> str:
    """RFC 8176 methods in the timeline's words."""
    first = "password" if "pwd" in amr else "provider" if "fed" in amr else "other"
    return f"{first}+second_factor" if "mfa" in amr else first


async def note_sign_in(ctx: Context, connection: Connection, row: BrowserSession,
                       replaced_own: bool, account: User | None = None) -> None:
    """In the sign-in's unit of work, for the session `row` about to be added: record its
    device and network, the security event, and the notice for an unrecognised device.
    `replaced_own`: the browser's previous session was of the same account."""
    device, network = request_device()
    row.device, row.network, row.last_used_at = device, network, row.created_at
    user = account
    if user is None:
        async with orm_session(connection) as session:
            user = await session.get(User, row.user_id)
    key = account_key(user.email) if user is not None and user.email else f"user:{row.user_id}"
    is_browser = request_devices.get() is not None
    known = replaced_own or trusted_device(ctx, key) is not None
    remember(ctx, key)
    notify = (is_browser and not known and user is not None and user.email is not None
              and not await _first_sign_in(connection, row.user_id))
    if notify and await _notice_allowed(connection, row.user_id, device, row.created_at):
        assert user is not None and user.email is not None
        # In the account's language, not the new device's (which may be a stranger's).
        async with orm_session(connection) as session:
            enqueue_mail(session, ctx.settings, user.email, NOTICE_TEMPLATE,
                         notice_context(ctx, device, network, row.created_at),
                         row.created_at, locale=user.ui_locale)
    else:
        notify = False
    await security_events.write(connection, SIGNED_IN, row.user_id, row.created_at,
                                device=device, network=network,
                                method=sign_in_method(list(row.amr)),
                                new_device=is_browser and not known, notified=notify)


def notice_context(ctx: Context, device: str, network: str | None, at: int) -> dict[str, Any]:
    issuer = ctx.settings.issuer  # never the Host header (ATO-10)
    # The time and the unknown network are written in the mail's language, by its template.
    return {"brand": ctx.settings.controller_name, "device": device, "network": network,
            "at": at,
            "reset_link": f"{issuer}/account/forgot",
            "sessions_link": f"{issuer}/account/sessions"}


_EARLIER_SESSION = Prepared(select(BrowserSession.id_hash).where(
    BrowserSession.user_id == bindparam("b_user_id")).limit(1))
_EARLIER_SIGN_IN = Prepared(select(SecurityEvent.id).where(
    SecurityEvent.user_id == bindparam("b_user_id"), SecurityEvent.kind == SIGNED_IN).limit(1))


async def _first_sign_in(connection: Connection, user_id: str) -> bool:
    """No earlier session or sign-in of the account: it was just created."""
    if await _EARLIER_SESSION.first(connection, {"b_user_id": user_id}) is not None:
        return False
    return await _EARLIER_SIGN_IN.first(connection, {"b_user_id": user_id}) is None


async def _notice_allowed(session: Connection, user_id: str, device: str, now: int) -> bool:
    """One more notice for this account and device name, counted atomically like password
    attempts (two parallel sign-ins send one); False once either limit is reached."""
    per_device = await throttle_store.count_in_window(
        session, "notice:" + digest(f"{user_id}|{device}"), now, NOTICE_WINDOW_SECONDS, cap=1)
    if per_device is None:
        return False
    per_account = await throttle_store.count_in_window(
        session, "noticeacct:" + digest(user_id), now, NOTICE_WINDOW_SECONDS,
        cap=NOTICES_PER_HOUR)
    return per_account is not None
