"""The account's security timeline (issue 12 item 8): every security event of the signed-in
customer's account, newest first, a page at a time, in plain words with the time and, where
the event kept them, the device and network. Only our own words and the event's recorded
facts are shown: never a secret, a code or a token (events never hold them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.locales import N_, gettext, ngettext
from idp.services.context import Context
from idp.store.models import SecurityEvent

PAGE_SIZE = 20
MAX_PAGE = 500  # deeper than anyone reads; bounds the OFFSET a crafted query can ask for

WORDS = {
    "signed_in": N_("Signed in"),
    "sign_in_failed": N_("A sign-in failed: wrong password"),
    "session_ended": N_("Signed out a session"),
    "password_changed": N_("Password changed"),
    "password_reset_requested": N_("Password reset link requested"),
    "password_reset": N_("Password reset with a mailed link"),
    "email_change_requested": N_("Email address change requested"),
    "email_changed": N_("Email address changed"),
    "email_change_undone": N_("Email address change undone"),
    "identity_linked": N_("Sign-in provider connected"),
    "identity_unlinked": N_("Sign-in provider disconnected"),
    "identity_relinked": N_("Sign-in provider connected again"),
    "upstream_subject_changed": N_("A provider account with your address was refused"),
    "totp_enabled": N_("Two-step sign-in turned on"),
    "totp_removed": N_("Two-step sign-in turned off"),
    "recovery_code_used": N_("A recovery code was used"),
    "recovery_codes_regenerated": N_("New recovery codes created"),
    "passkey_added": N_("Passkey added"),
    "passkey_removed": N_("Passkey removed"),
    "passkey_counter_regressed": N_("Passkey refused: it may have been copied"),
    "account_disabled": N_("Account deactivated"),
    "registered": N_("Account created"),
    "registration_attempted": N_("Someone tried to register with your address"),
}
# A signed_in event's method, as a sentence of its own (with "from a new device" when the
# sign-in was the device's first): whole sentences translate; pieces put together do not.
SIGNED_IN = {
    "password": (N_("Signed in with your password"),
                 N_("Signed in with your password from a new device")),
    "provider": (N_("Signed in with a sign-in provider"),
                 N_("Signed in with a sign-in provider from a new device")),
    "password+second_factor": (N_("Signed in with your password and second step"),
                               N_("Signed in with your password and second step from a new "
                                  "device")),
    "provider+second_factor": (N_("Signed in with a sign-in provider and second step"),
                               N_("Signed in with a sign-in provider and second step from a "
                                  "new device")),
    "other+second_factor": (N_("Signed in with a second step"),
                            N_("Signed in with a second step from a new device")),
    "": (N_("Signed in"), N_("Signed in from a new device")),
}


@dataclass(frozen=True)
class TimelineItem:
    at: int
    what: str
    device: str | None
    network: str | None


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    page: int
    has_next: bool


def page_number(raw: str | None) -> int:
    """The `page` query parameter, forgiving: anything unreadable is the first page."""
    try:
        number = int(raw or "1") if len(raw or "") <= 4 else 1
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


async def timeline(ctx: Context, user_id: str, page: int) -> TimelinePage:
    offset = (page - 1) * PAGE_SIZE
    async with ctx.db.transaction(read_only=True) as session:
        rows = list(await session.scalars(
            select(SecurityEvent).where(SecurityEvent.user_id == user_id)
            .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc())
            .offset(offset).limit(PAGE_SIZE + 1)))
    items = [_item(row) for row in rows[:PAGE_SIZE]]
    return TimelinePage(items, page, len(rows) > PAGE_SIZE)


def _item(row: SecurityEvent) -> TimelineItem:
    detail: dict[str, Any] = dict(row.detail or {})
    # In the page's language (idp.locales): our words only; devices and networks as recorded.
    what = (gettext(WORDS[row.kind]) if row.kind in WORDS
            else row.kind.replace("_", " ").capitalize())
    if row.kind == "signed_in":
        plain, new = SIGNED_IN.get(str(detail.get("method", "")), SIGNED_IN[""])
        what = gettext(new if detail.get("new_device") else plain)
    if row.kind == "session_ended":
        count = int(detail.get("sessions_ended") or 1)
        ended = detail.get("ended_device")
        what = (gettext("Signed out %(device)s (%(network)s)", device=ended,
                        network=detail.get("ended_network") or gettext("unknown network"))
                if count == 1 and ended else
                ngettext("Signed out %(num)d other session", "Signed out %(num)d other sessions",
                         count, num=count))
    if isinstance(detail.get("alias"), str):
        what += f" ({detail['alias']})"
    return TimelineItem(row.created_at, what, _text(detail.get("device")),
                        _text(detail.get("network")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
