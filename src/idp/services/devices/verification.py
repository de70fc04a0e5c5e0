"""RFC 8628 §3.3: the customer, on a phone or computer, enters the code a device shows,
confirms it (§5.4: a code sent by someone else would sign *their* device in to this account),
and is taken through the ordinary sign-in and consent for the device's app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest
from idp.domain import AuthorizationRequest
from idp.locales import N_, current_locale
from idp.protocol.device import display_user_code, normalize_user_code
from idp.protocol.scopes import describe_scopes
from idp.services.consent.texts import words_in
from idp.services.context import Context
from idp.services.signin import throttle
from idp.services.signin.authorization import Outcome, continue_request
from idp.store import clients as client_store
from idp.store import device_codes as device_store
from idp.store.models import DeviceCode


@dataclass(frozen=True)
class DeviceRequest:
    """What the confirmation page shows about a device's pending request."""

    user_code: str  # as the device shows it, XXXX-XXXX
    client_id: str
    client_name: str
    asks_for: tuple[str, ...]  # the scopes' plain-words descriptions


def _unknown() -> errors.InvalidRequest:
    # One message for a code that never existed, expired, or was used: a guesser learns
    # nothing from it.
    return errors.InvalidRequest(N_("That code is not valid. Check the code on your device: "
                                    "it may have expired, then the device shows a new one."),
                                 redirectable=False)


async def _pending(ctx: Context, session: AsyncSession, entered: str) -> DeviceCode:
    """The pending request a code names. Callers count the entry against the customer's
    network first (RFC 8628 §5.1: user codes are short enough to guess without a limit)."""
    code = normalize_user_code(entered)
    row = None
    if code is not None:
        row = await device_store.pending_by_user_code(session, digest(code), ctx.now())
    if row is None:
        raise _unknown()
    return row


async def find_device_request(ctx: Context, entered: str) -> DeviceRequest:
    """What the confirmation page shows about the request a code names."""
    await throttle.count_user_code_entry(ctx)
    async with ctx.db.transaction(read_only=True) as session:
        row = await _pending(ctx, session, entered)
        client = await client_store.get_client(session, row.client_id)
        # The scopes in the customer's words (issue 15 item 4).
        words = await words_in(ctx, session, current_locale())
    if client is None:
        raise _unknown()
    scopes = list(AuthorizationRequest.from_json(row.request).scopes)
    return DeviceRequest(display_user_code(normalize_user_code(entered) or ""),
                         client.client_id, client.name,
                         tuple(words.scope(info).description for info in describe_scopes(scopes)))


async def confirm_device_request(ctx: Context, entered: str, browser_id: str,
                                 session_cookie: str | None) -> Outcome:
    """The customer confirmed the code: sign-in, consent and approval follow as for any app
    (an existing session and a consent that covers the request approve it at once)."""
    await throttle.count_user_code_entry(ctx)
    async with ctx.db.transaction() as session:
        row = await _pending(ctx, session, entered)
        client = await client_store.get_client(session, row.client_id)
        if client is None:
            raise _unknown()
        request = AuthorizationRequest.from_json(row.request)
        return await continue_request(ctx, session, client, request, browser_id,
                                      session_cookie)


async def deny_device_request(ctx: Context, entered: str) -> None:
    """The customer does not recognise the code: the device's next poll gets access_denied."""
    await throttle.count_user_code_entry(ctx)
    async with ctx.db.transaction() as session:
        row = await _pending(ctx, session, entered)
        await device_store.settle(session, row.device_code_hash, ctx.now(), device_store.DENIED)
