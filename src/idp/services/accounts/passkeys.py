"""The customer's passkeys in the account center (issue 12 item 5): register one, list them,
remove one. Each change comes after a recent authentication (the routes check
`center.confirmed_recently`; with a second factor, that sign-in used it), and is a security
event.

Registration (WebAuthn §7.1): the page carries PublicKeyCredentialCreationOptions whose
challenge waits server-side for this browser (single use, CHALLENGE_SECONDS); the user id is
the account's opaque id, never its address (§14.6.1); a discoverable credential is required
so it can sign in without a username, user verification preferred, the account's existing
credentials excluded so one authenticator is not registered twice."""

from __future__ import annotations

from dataclasses import dataclass

import webauthn
from sqlalchemy.exc import IntegrityError
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp.crypto.handles import new_handle
from idp.domain import SessionInfo
from idp.locales import N_
from idp.services.context import Context
from idp.services.signin import change_notice, security_events
from idp.services.signin.passkeys import (
    MALFORMED,
    TIMEOUT_MS,
    VERIFY_ERRORS,
    PasskeyRefused,
    b64url,
    challenge_key,
    consume_challenge,
    from_b64url,
    parse_credential,
    rp_id,
    rp_origin,
    store_challenge,
)
from idp.store import passkeys as store
from idp.store.models import Passkey, User

PLACE = "register"
MAX_NAME = 64
REFUSED = N_("Your passkey could not be added. Try again, and use a passkey made for this "
             "site.")
DUPLICATE = N_("That passkey is already registered.")
NOT_FOUND = N_("That passkey is not one of yours, or it was already removed.")
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class PasskeyView:
    id: str
    name: str
    created_at: int
    last_used_at: int | None
    synced: bool  # backup eligible: the provider syncs it between devices
    backed_up: bool


async def list_passkeys(ctx: Context, user_id: str) -> list[PasskeyView]:
    async with ctx.db.transaction(read_only=True) as session:
        rows = await store.passkeys_of_user(session, user_id)
    return [PasskeyView(p.id, p.name, p.created_at, p.last_used_at,
                        p.device_type == "multi_device", p.backed_up) for p in rows]


async def registration_options(ctx: Context, user: User, browser_id: str) -> str:
    """PublicKeyCredentialCreationOptions as JSON; the challenge waits for this browser."""
    async with ctx.db.transaction() as session:
        existing = await store.passkeys_of_user(session, user.id)
        challenge = await store_challenge(ctx, session, challenge_key(browser_id, PLACE),
                                          user.id)
    options = webauthn.generate_registration_options(
        rp_id=rp_id(ctx.settings), rp_name=ctx.settings.controller_name,
        user_id=user.id.encode(), user_name=user.email or user.id,
        user_display_name=user.email or "",
        challenge=challenge, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=from_b64url(p.credential_id))
                             for p in existing])
    return webauthn.options_to_json(options)


def clean_name(name: str, count: int) -> str:
    name = " ".join(name.split())[:MAX_NAME]
    return name or f"Passkey {count + 1}"


async def register(ctx: Context, info: SessionInfo, browser_id: str, name: str,
                   credential: str) -> str:
    """Verify the registration response (§7.1 through py_webauthn: challenge, origin, RP ID
    hash, UP, the attestation) and store the passkey; its name. PasskeyRefused otherwise."""
    parsed = parse_credential(credential)
    transports = parsed["response"].get("transports") or []
    if not isinstance(transports, list):
        raise PasskeyRefused(MALFORMED)
    challenge = await consume_challenge(ctx, challenge_key(browser_id, PLACE), info.user_id)
    try:
        verified = webauthn.verify_registration_response(
            credential=parsed, expected_challenge=challenge,
            expected_rp_id=rp_id(ctx.settings), expected_origin=rp_origin(ctx.settings))
    except VERIFY_ERRORS:
        raise PasskeyRefused(REFUSED) from None
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            credential_id = b64url(verified.credential_id)
            if await store.by_credential_id(session, credential_id) is not None:
                raise PasskeyRefused(DUPLICATE)
            chosen = clean_name(name, await store.count_passkeys(session, info.user_id))
            await store.add_passkey(session, Passkey(
                id=new_handle(16), user_id=info.user_id, credential_id=credential_id,
                public_key=verified.credential_public_key, sign_count=verified.sign_count,
                transports=[t for t in transports if t in _TRANSPORTS],
                device_type=verified.credential_device_type.value,
                backed_up=verified.credential_backed_up, aaguid=verified.aaguid,
                name=chosen, created_at=now, last_used_at=None))
            security_events.record(session, security_events.PASSKEY_ADDED, info.user_id, now,
                                   passkey=chosen)
            await change_notice.notify(ctx, session, info.user_id, now,
                                       security_events.PASSKEY_ADDED)
    except IntegrityError:  # the same credential registered by a concurrent post
        raise PasskeyRefused(DUPLICATE) from None
    ctx.notify_outbox()
    return chosen


async def rename(ctx: Context, info: SessionInfo, passkey_id: str, name: str) -> str:
    chosen = " ".join(name.split())[:MAX_NAME]
    if not chosen:
        raise PasskeyRefused(N_("Enter a name for the passkey."))
    async with ctx.db.transaction() as session:
        if not await store.rename_passkey(session, info.user_id, passkey_id[:64], chosen):
            raise PasskeyRefused(NOT_FOUND)
    return chosen


async def remove(ctx: Context, info: SessionInfo, passkey_id: str) -> str:
    async with ctx.db.transaction() as session:
        name = await store.delete_passkey(session, info.user_id, passkey_id[:64])
        if name is None:
            raise PasskeyRefused(NOT_FOUND)
        now = ctx.now()
        security_events.record(session, security_events.PASSKEY_REMOVED, info.user_id,
                               now, passkey=name)
        await change_notice.notify(ctx, session, info.user_id, now,
                                   security_events.PASSKEY_REMOVED)
    ctx.notify_outbox()
    return name
