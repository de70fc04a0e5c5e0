"""The account's security timeline (issue 12 item 8): every security event of the signed-in
customer's account, newest first, a page at a time, in plain words with the time and, where
the event kept them, the device and network. Only our own words and the event's recorded
facts are shown: never a secret, a code or a token (events never hold them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.services.context import Context
from idp.store.models import SecurityEvent

PAGE_SIZE = 20
MAX_PAGE = 500  # deeper than anyone reads; bounds the OFFSET a crafted query can ask for

WORDS = {
    "signed_in": "Signed in",
    "sign_in_failed": "A sign-in failed: wrong password",
    "session_ended": "Signed out a session",
    "password_changed": "Password changed",
    "password_reset_requested": "Password reset link requested",
    "password_reset": "Password reset with a mailed link",
    "email_change_requested": "Email address change requested",
    "email_changed": "Email address changed",
    "email_change_undone": "Email address change undone",
    "identity_linked": "Sign-in provider connected",
    "identity_unlinked": "Sign-in provider disconnected",
    "identity_relinked": "Sign-in provider connected again",
    "upstream_subject_changed": "A provider account with your address was refused",
    "totp_enabled": "Two-step sign-in turned on",
    "totp_removed": "Two-step sign-in turned off",
    "recovery_code_used": "A recovery code was used",
    "recovery_codes_regenerated": "New recovery codes created",
    "passkey_added": "Passkey added",
    "passkey_removed": "Passkey removed",
    "passkey_counter_regressed": "Passkey refused: it may have been copied",
    "account_disabled": "Account deactivated",
    "registered": "Account created",
    "registration_attempted": "Someone tried to register with your address",
}
METHODS = {"password": "with your password", "provider": "with a sign-in provider",
           "password+second_factor": "with your password and second step",
           "provider+second_factor": "with a sign-in provider and second step",
           "other": "", "other+second_factor": "with a second step"}


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
    what = WORDS.get(row.kind, row.kind.replace("_", " ").capitalize())
    method = METHODS.get(str(detail.get("method", "")), "")
    if row.kind == "signed_in" and method:
        what = f"{what} {method}"
    if row.kind == "signed_in" and detail.get("new_device"):
        what += " from a new device"
    if row.kind == "session_ended":
        count = int(detail.get("sessions_ended") or 1)
        ended = detail.get("ended_device")
        what = (f"Signed out {ended} ({detail.get('ended_network') or 'unknown network'})"
                if count == 1 and ended else
                f"Signed out {count} other session{'s' if count != 1 else ''}")
    if isinstance(detail.get("alias"), str):
        what += f" ({detail['alias']})"
    return TimelineItem(row.created_at, what, _text(detail.get("device")),
                        _text(detail.get("network")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
