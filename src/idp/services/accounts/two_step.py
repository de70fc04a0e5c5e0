"""The customer's second factor in the account center (issue 12 item 6): set up an
authenticator app, renew the recovery codes, remove the app.

Setting up is two steps with nothing stored in between: the page shows a new secret (as a QR
code of its otpauth:// URI, drawn here, and as text) and carries it in the form sealed
(Fernet, bound to the account, good for ENROLMENT_SECONDS); the app is stored only once the
customer types a code it shows, so a mistyped scan never locks anyone out. Every change comes
after a recent authentication (ASVS 7.5.1; the routes check it), is a security event, and
ends the account's other sessions and refresh tokens (ATO-11)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto import otp
from idp.crypto.keys import KeyEncryptor
from idp.domain import SessionInfo
from idp.locales import N_, gettext
from idp.services.context import Context
from idp.services.signin import change_notice, security_events
from idp.services.signin.second_factor import (
    CodeRefused,
    count_code,
    recovery_key,
    secret_encryptor,
    verify_code,
)
from idp.services.signin.sessions import end_sessions_of_user
from idp.store import factors as store
from idp.store.models import User

ENROLMENT_PURPOSE = "totp-enrolment"
ENROLMENT_SECONDS = 900

SETUP_EXPIRED = N_("This setup has expired. Scan the new code below and try again.")
CONFIRM_MALFORMED = N_("Enter the 6-digit code your authenticator app shows.")
CONFIRM_WRONG = N_("That code is not right. Check that the app shows a code for this account, "
                   "and that your phone's clock is right, then try again.")
ALREADY_ON = N_("Two-step sign-in is already on for this account.")
NOT_ON = N_("Two-step sign-in is not on for this account.")


class TwoStepRefused(Exception):
    """Shown on the page, in words for the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = gettext(message)  # a catalog text (idp.locales), in the page's language


@dataclass(frozen=True)
class Status:
    enabled: bool
    since: int | None
    recovery_codes_left: int


async def status(ctx: Context, user_id: str) -> Status:
    async with ctx.db.transaction(read_only=True) as session:
        factor = await store.totp_factor(session, user_id)
        left = await store.count_unused_recovery_codes(session, user_id) if factor else 0
    return Status(factor is not None, factor.created_at if factor else None, left)


@dataclass(frozen=True)
class Enrolment:
    secret: str  # shown in groups of four, for typing into an app by hand
    sealed: str  # the secret, for the confirming post: encrypted, bound to the account
    qr_svg: str  # the otpauth:// URI as an inline SVG QR code (no outside service)

    @property
    def grouped_secret(self) -> str:
        return otp.grouped(self.secret)


def _sealer(ctx: Context) -> KeyEncryptor:
    return KeyEncryptor(ctx.settings.resolved_key_secret(), ENROLMENT_PURPOSE)


def start_enrolment(ctx: Context, user: User) -> Enrolment:
    secret = otp.new_secret()
    sealed = _sealer(ctx).encrypt({"user": user.id, "secret": secret, "at": ctx.now()})
    return _enrolment(ctx, user, secret, sealed)


def reopen_enrolment(ctx: Context, user: User, sealed: str) -> Enrolment:
    """The same setup again (after a wrong code), or a new one when it has expired."""
    secret = _unseal(ctx, user.id, sealed)
    return _enrolment(ctx, user, secret, sealed) if secret else start_enrolment(ctx, user)


def _enrolment(ctx: Context, user: User, secret: str, sealed: str) -> Enrolment:
    uri = otp.provisioning_uri(secret, user.email or user.id, ctx.settings.controller_name)
    svg = io.BytesIO()
    # A light background of its own, so dark mode does not leave a QR code no camera reads;
    # a viewBox instead of a fixed size, so the stylesheet can shrink it to a narrow phone.
    segno.make(uri, error="m").save(svg, kind="svg", xmldecl=False, scale=5, border=4,
                                    dark="#000", light="#fff", nl=False, omitsize=True,
                                    title=gettext("QR code for your authenticator app"))
    return Enrolment(secret, sealed, svg.getvalue().decode())


def _unseal(ctx: Context, user_id: str, sealed: str) -> str | None:
    if not sealed or len(sealed) > 1024:
        return None
    try:
        data = _sealer(ctx).decrypt(sealed)
    except (RuntimeError, ValueError):  # not ours, or altered
        return None
    if data.get("user") != user_id or not isinstance(data.get("secret"), str) or (
            ctx.now() - int(data.get("at") or 0) > ENROLMENT_SECONDS):
        return None
    return str(data["secret"])


async def confirm_enrolment(ctx: Context, info: SessionInfo, sealed: str, code: str
                            ) -> list[str]:
    """Turn two-step sign-in on once `code` is one the sealed secret's app shows now; returns
    the new recovery codes, to show once. TwoStepRefused otherwise, nothing stored."""
    secret = _unseal(ctx, info.user_id, sealed)
    if secret is None:
        raise TwoStepRefused(SETUP_EXPIRED)
    six = otp.totp_code(code[:otp.MAX_CODE_LENGTH])
    if six is None:
        raise TwoStepRefused(CONFIRM_MALFORMED)
    now = ctx.now()
    step = otp.matching_step(secret, six, now)
    if step is None:
        raise TwoStepRefused(CONFIRM_WRONG)
    codes = otp.new_recovery_codes()
    try:
        async with ctx.db.transaction() as session:
            # The confirming code's step is taken: it cannot sign in a second time.
            if not await store.save_totp(session, info.user_id,
                                         secret_encryptor(ctx).encrypt({"secret": secret}),
                                         step, now):
                raise TwoStepRefused(ALREADY_ON)
            await _store_codes(ctx, info.user_id, codes, now, session)
            security_events.record(session, security_events.TOTP_ENABLED, info.user_id, now)
            await change_notice.notify(ctx, session, info.user_id, now,
                                       security_events.TOTP_ENABLED)
            await end_sessions_of_user(ctx, session, info.user_id, keep_sid=info.sid)
    except IntegrityError:  # another tab confirmed the same account's setup at that moment
        raise TwoStepRefused(ALREADY_ON) from None
    ctx.notify_outbox()
    return codes


async def _store_codes(ctx: Context, user_id: str, codes: list[str], now: int,
                       session: AsyncSession) -> None:
    key = recovery_key(ctx)
    await store.replace_recovery_codes(
        session, user_id, [otp.recovery_digest(key, user_id, code) for code in codes], now)


async def regenerate_recovery_codes(ctx: Context, user_id: str) -> list[str]:
    """Ten new recovery codes, to show once; every earlier one stops working."""
    codes = otp.new_recovery_codes()
    now = ctx.now()
    async with ctx.db.transaction() as session:
        if not await store.has_totp(session, user_id):
            raise TwoStepRefused(NOT_ON)
        await _store_codes(ctx, user_id, codes, now, session)
        security_events.record(session, security_events.RECOVERY_CODES_REGENERATED, user_id,
                               now)
        await change_notice.notify(ctx, session, user_id, now,
                                   security_events.RECOVERY_CODES_REGENERATED)
    ctx.notify_outbox()
    return codes


async def remove_totp(ctx: Context, info: SessionInfo, code: str) -> None:
    """Turn two-step sign-in off, given a code of the app or a recovery code (counted and
    checked like one at sign-in); the recovery codes go with it. CodeRefused, Throttled."""
    attempt = await count_code(ctx, info.user_id)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        if not await store.has_totp(session, info.user_id):
            raise CodeRefused(NOT_ON)
        await verify_code(ctx, session, info.user_id, code, attempt)
        await store.delete_totp(session, info.user_id)
        security_events.record(session, security_events.TOTP_REMOVED, info.user_id, now)
        await change_notice.notify(ctx, session, info.user_id, now,
                                   security_events.TOTP_REMOVED)
        await end_sessions_of_user(ctx, session, info.user_id, keep_sid=info.sid)
    ctx.notify_outbox()
