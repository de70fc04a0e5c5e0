"""Upstream revocation and deletion hooks (federation.md §1.7, §2.7, §3.5, §9 requirements
27-30): the upstream tells us a customer withdrew consent, deleted their upstream account, had
their account disabled or hijacked, had a token revoked, or asked for their data to be
deleted; we unlink, suspend or erase the identity and end everything its logins led to
(`upstream_revocation`). Verification is the upstream client's (`idp.federation`); this
module acts on the result.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest, new_handle
from idp.federation.apple import AppleUpstream
from idp.federation.apple_events import AppleEvent
from idp.federation.errors import FederationError, UpstreamUnavailable
from idp.federation.facebook import FacebookUpstream
from idp.federation.google import GoogleUpstream
from idp.federation.google_risc import OAUTH, RISC, RiscEvent, verify_security_event
from idp.services.accounts.upstream_withdrawal import (
    end_logins,
    erase_identity,
    forget_matching_token,
    withdraw_identity,
)
from idp.services.context import Context
from idp.services.upstream import tokens as upstream_tokens
from idp.services.upstream.providers import upstream_client
from idp.store import federation as store
from idp.store.models import UpstreamDeletion, UsedAssertion

log = logging.getLogger("idp.federation")
# How long a notification's jti is remembered. Apple retries for a while; 30 days is ample.
JTI_MEMORY = 30 * 86_400

U = TypeVar("U", AppleUpstream, FacebookUpstream, GoogleUpstream)
Outcome = Literal["handled", "ignored", "duplicate", "invalid", "unavailable"]


class HookRefused(Exception):
    """The alias names no enabled upstream of the kind the hook is for (answered 404)."""


@dataclass(frozen=True)
class DeletionReceipt:
    url: str
    confirmation_code: str


async def _client(ctx: Context, alias: str, kind: type[U]) -> U:
    client = await upstream_client(ctx, alias)
    if not isinstance(client, kind):
        raise HookRefused("no such upstream")
    return client


def _remember(session: AsyncSession, alias: str, jti: str | None, now: int) -> None:
    """De-duplicate by `jti` (requirement 27): the primary key of `used_assertions`, under a
    key of its own, refuses a second copy when the unit of work commits."""
    if jti is not None:
        session.add(UsedAssertion(key=digest(json.dumps(["upstream-event", alias, jti])),
                                  expires_at=now + JTI_MEMORY))


async def apple_notification(ctx: Context, alias: str, body: bytes) -> Outcome:
    """Requirement 27: POST JSON {"payload": JWS}, verified against Apple's JWKS with
    iss=https://appleid.apple.com and aud one of our client ids."""
    client = await _client(ctx, alias, AppleUpstream)
    try:
        event = await client.verify_notification(body)
    except FederationError as exc:
        log.warning("apple notification refused: %s", exc.reason)
        return "invalid"
    try:
        async with ctx.db.transaction() as session:
            _remember(session, alias, event.jti, ctx.now())
            outcome = await _apple_event(ctx, session, client, event)
    except IntegrityError:
        log.info("apple notification already handled (%s)", event.type)
        return "duplicate"
    ctx.notify_outbox()
    log.info("apple notification %s: %s", event.type, outcome)
    return outcome


async def _apple_event(ctx: Context, session: AsyncSession, client: AppleUpstream,
                       event: AppleEvent) -> Outcome:
    if not event.known:
        return "ignored"  # §2.7: unknown types are acknowledged and ignored
    identity = await store.find_identity(session, client.config.namespace, event.sub)
    if identity is None:
        return "ignored"
    if event.type == "email-disabled":
        # "the user has chosen to stop receiving email through the relay"
        identity.email_deliverable = False
    elif event.type == "email-enabled":
        identity.email_deliverable = True
    elif event.type == "consent-revoked":
        await withdraw_identity(ctx, session, identity, dead=False)
    elif event.type == "account-delete":
        # "as consent-revoked, and mark the subject permanently dead"
        await withdraw_identity(ctx, session, identity, dead=True)
    return "handled"


async def facebook_deauthorize(ctx: Context, alias: str, signed_request: str) -> Outcome:
    """Requirement 29: the `signed_request` verified with the app secret; the ASID's identity
    is unlinked and the sessions derived from it end."""
    client = await _client(ctx, alias, FacebookUpstream)
    try:
        request = client.parse_signed_request(signed_request)
    except FederationError as exc:
        log.warning("facebook deauthorize refused: %s", exc.reason)
        return "invalid"
    async with ctx.db.transaction() as session:
        identity = await store.find_identity(session, client.config.namespace,
                                             request.user_id)
        if identity is not None:
            await withdraw_identity(ctx, session, identity, dead=False)
    ctx.notify_outbox()
    log.info("facebook deauthorize handled")
    return "handled" if identity is not None else "ignored"


async def facebook_deletion(ctx: Context, alias: str, signed_request: str
                            ) -> DeletionReceipt | None:
    """Requirement 30: verified like the deauthorize callback; the identity and the profile
    data imported with it are deleted, and a job records the result under a fresh
    confirmation code (None when the request does not verify)."""
    client = await _client(ctx, alias, FacebookUpstream)
    try:
        request = client.parse_signed_request(signed_request)
    except FederationError as exc:
        log.warning("facebook data deletion refused: %s", exc.reason)
        return None
    code = new_handle(16)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        identity = await store.find_identity(session, client.config.namespace,
                                             request.user_id)
        if identity is not None:
            await erase_identity(ctx, session, identity)
        # The same answer whether or not we knew the user: the job completes either way.
        session.add(UpstreamDeletion(code_hash=digest(code), alias=alias, status="completed",
                                     created_at=now, completed_at=now))
    ctx.notify_outbox()
    log.info("facebook data deletion handled")
    return DeletionReceipt(url=f"{ctx.settings.issuer}/federation/{alias}/deletion/{code}",
                           confirmation_code=code)


async def deletion_status(ctx: Context, alias: str, code: str) -> UpstreamDeletion | None:
    if not code or len(code) > 64:
        return None
    async with ctx.db.transaction() as session:
        row = await session.get(UpstreamDeletion, digest(code))
    return row if row is not None and row.alias == alias else None


# Requirement 28: the event types that end what a Google login led to.
_END_LOGINS = frozenset({f"{RISC}sessions-revoked", f"{OAUTH}tokens-revoked"})


async def google_security_event(ctx: Context, alias: str, body: bytes) -> Outcome:
    """Requirement 28: a RISC Security Event Token, verified against the risc-configuration
    issuer and JWKS with aud one of our client ids; `exp` is not checked."""
    client = await _client(ctx, alias, GoogleUpstream)
    try:
        events = await verify_security_event(client, body)
    except UpstreamUnavailable as exc:
        # Not the sender's fault: answered 503 so that Google delivers it again.
        log.warning("google security event not verifiable now: %s", exc.reason)
        return "unavailable"
    except FederationError as exc:
        log.warning("google security event refused: %s", exc.reason)
        return "invalid"
    try:
        async with ctx.db.transaction() as session:
            _remember(session, alias, events[0].jti, ctx.now())
            outcomes = [await _google_event(ctx, session, client, e) for e in events]
    except IntegrityError:
        log.info("google security event already handled")
        return "duplicate"
    ctx.notify_outbox()
    return "handled" if "handled" in outcomes else "ignored"


async def _google_event(ctx: Context, session: AsyncSession, client: GoogleUpstream,
                        event: RiscEvent) -> Outcome:
    name = event.type.rsplit("/", 1)[-1]
    log.info("google security event %s", name)
    if event.type == f"{OAUTH}token-revoked" and event.token is not None:
        # "Required: delete that refresh token." Only the token: the sign-in stays.
        found = await forget_matching_token(ctx, session, client.config.namespace,
                                            event.token, event.token_alg)
        return "handled" if found else "ignored"
    if event.sub is None:
        return "ignored"  # `verification`: "Log it" (done above)
    identity = await store.find_identity(session, client.config.namespace, event.sub)
    if identity is None:
        return "ignored"
    disabled = event.type == f"{RISC}account-disabled"
    if event.type in _END_LOGINS or (disabled and event.reason == "hijacking"):
        # "required: end the user's open sessions"
        await end_logins(ctx, session, identity)
        if event.type == f"{OAUTH}tokens-revoked":
            # "Suggested: delete stored OAuth tokens": Google no longer honours them.
            upstream_tokens.forget(identity)
    elif disabled and event.reason is None:
        # "With no reason: disable Google sign-in and email recovery for the user."
        if identity.status == "active":
            identity.status = "suspended"
    elif event.type == f"{RISC}account-enabled":
        if identity.status == "suspended":
            identity.status = "active"
    else:
        return "ignored"
    return "handled"
