"""RFC 8628 §3.1-3.2: the device authorization endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest, new_handle
from idp.domain import AuthorizationRequest
from idp.protocol.authorize import check_scope
from idp.protocol.device import DEVICE_CODE_GRANT, display_user_code, new_user_code
from idp.services.context import Context
from idp.services.tokens.client_auth import authenticated_client
from idp.store import device_codes as device_store
from idp.store.models import DeviceCode

VERIFICATION_PATH = "/device"
DONE_PATH = "/device/done"


def verification_uri(ctx: Context, user_code: str | None = None) -> str:
    """Built from the issuer, never from the request's Host header."""
    base = f"{ctx.settings.issuer}{VERIFICATION_PATH}"
    if user_code is None:
        return base
    return f"{base}?{urlencode({'user_code': display_user_code(user_code)})}"


async def start_device_authorization(ctx: Context, form: Mapping[str, str], repeated: set[str],
                                     authorization: str | None) -> dict[str, Any]:
    """Authenticate the client as at the token endpoint, check what it asks, and hand out a
    device code (for the device's polls) and a user code (for the customer)."""
    client = await authenticated_client(ctx, form, repeated, authorization)
    if DEVICE_CODE_GRANT not in client.grant_types:
        raise errors.UnauthorizedClient("The client may not use the device authorization grant")
    scopes = check_scope(form.get("scope"), client)
    now = ctx.now()
    device_code = new_handle()
    # The interaction that approves it sees an ordinary authorization request whose answer
    # goes to our own page that says the device is signed in (or not).
    request = AuthorizationRequest(
        client_id=client.client_id, redirect_uri=f"{ctx.settings.issuer}{DONE_PATH}",
        response_mode="query", scopes=tuple(scopes), device_code_hash=digest(device_code))
    async with ctx.db.transaction() as session:
        user_code = await _unused_user_code(session)
        device_store.add_device_code(session, DeviceCode(
            device_code_hash=digest(device_code), user_code_hash=digest(user_code),
            client_id=client.client_id, request=request.to_json(),
            status=device_store.PENDING, interval=ctx.settings.device_poll_interval,
            last_polled_at=None, created_at=now, expires_at=now + ctx.settings.device_code_ttl,
            used_at=None))
    return {
        "device_code": device_code,
        "user_code": display_user_code(user_code),
        "verification_uri": verification_uri(ctx),
        "verification_uri_complete": verification_uri(ctx, user_code),
        "expires_in": ctx.settings.device_code_ttl,
        "interval": ctx.settings.device_poll_interval,
    }


async def _unused_user_code(session: AsyncSession) -> str:
    """A user code no stored request has (the unique index is the final word: a race between
    two requests drawing the same code fails one of them rather than mixing them up)."""
    for _ in range(5):
        code = new_user_code()
        if not await device_store.user_code_taken(session, digest(code)):
            return code
    raise errors.TemporarilyUnavailable("No user code could be drawn; try again")
