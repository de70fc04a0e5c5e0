"""RFC 8628 §3.4-3.5: the device polls the token endpoint with its device code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest
from idp.crypto.keys import KeyRing
from idp.domain import ClientConfig
from idp.protocol.device import DEVICE_CODE_GRANT, SLOW_DOWN_STEP
from idp.services.context import Context
from idp.services.tokens.grant_types import grant_handler, token_response
from idp.services.tokens.issuance import (
    Authentication,
    Subject,
    mint_access_token,
    mint_id_token,
    mint_refresh_token,
    wants_refresh_token,
)
from idp.store import device_codes as device_store
from idp.store import tokens as token_store
from idp.store.models import DeviceCode


@grant_handler(DEVICE_CODE_GRANT)
async def device_code_grant(ctx: Context, client: ClientConfig, form: Mapping[str, str]
                            ) -> dict[str, Any]:
    device_code = form.get("device_code")
    if not device_code or len(device_code) > 128:
        raise errors.InvalidRequest("device_code is missing")
    code_hash = digest(device_code)
    ring = await ctx.keys.ring()
    now = ctx.now()
    failure: errors.OAuthError
    # A pending poll's bookkeeping (when it came, a raised interval) commits before its
    # error is raised; polls of one code take turns on the row's lock.
    async with ctx.db.transaction() as session:
        row = await device_store.lock_device_code(session, code_hash)
        if row is None or row.client_id != client.client_id:
            # RFC 8628 §3.4 (RFC 6749 §5.2): issued to another client, or never issued.
            raise errors.InvalidGrant("The device code is invalid")
        if row.used_at is not None:
            raise errors.InvalidGrant("The device code was already used")
        if row.expires_at <= now:
            raise errors.ExpiredToken()
        if row.status == device_store.DENIED:
            raise errors.AccessDenied("The customer denied the device's request")
        if row.status == device_store.PENDING:
            failure = _pending(row, now)
        else:
            claimed = await device_store.claim_approved(session, code_hash, client.client_id,
                                                        now)
            if claimed is None:
                raise errors.InvalidGrant("The device code was already used")
            try:
                return await _redeem(ctx, ring, session, client, claimed, code_hash)
            except errors.OAuthError as exc:
                failure = exc  # the code stays spent
    raise failure


def _pending(row: DeviceCode, now: int) -> errors.OAuthError:
    """RFC 8628 §3.5: still waiting for the customer. A poll sooner than the interval after
    the last one gets slow_down, and the interval grows by 5 s for this and every later
    poll."""
    too_soon = row.last_polled_at is not None and now - row.last_polled_at < row.interval
    row.last_polled_at = now
    if too_soon:
        row.interval += SLOW_DOWN_STEP
        return errors.SlowDown(f"Polling too fast: wait at least {row.interval} seconds "
                               "between requests")
    return errors.AuthorizationPending()


async def _redeem(ctx: Context, ring: KeyRing, session: AsyncSession, client: ClientConfig,
                  row: DeviceCode, code_hash: str) -> dict[str, Any]:
    # Set together when the customer approved (`store.device_codes.settle`).
    assert row.grant_id is not None and row.user_id is not None and row.scopes is not None
    assert row.auth_time is not None and row.amr is not None and row.acr is not None
    found = await token_store.grant_state(session, row.grant_id)
    if found is None or found.grant.revoked_at is not None or found.user.id != row.user_id:
        raise errors.InvalidGrant("The consent behind this device code was withdrawn")
    grant, user = found.grant, found.user
    auth = Authentication(row.auth_time, tuple(row.amr), row.acr, None, None)
    subject = Subject(ctx.subject_of(client, user.id), user, grant, auth, found.standing)
    scopes = list(row.scopes)
    # `code_hash` ties the tokens to this device code as an authorization code's are tied
    # to it: revoking the chain revokes them.
    access_token = mint_access_token(ctx, ring, client, subject, scopes, None, code_hash)
    body = token_response(access_token, ctx.settings.access_token_ttl, scopes)
    if wants_refresh_token(client, scopes):
        body["refresh_token"] = await mint_refresh_token(
            ctx, session, client, subject, scopes, None, code_hash=code_hash, device=True)
    if "openid" in scopes:
        body["id_token"] = mint_id_token(ctx, ring, client, subject, scopes, None,
                                         access_token)
    return body
