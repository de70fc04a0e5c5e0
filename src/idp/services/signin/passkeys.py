"""WebAuthn ceremonies (W3C Web Authentication Level 3, through py_webauthn): the relying
party's identity, challenges bound to one browser and one place, and the verification of an
assertion with the signature-counter rule. Used by the account center (registration), the
login page (username-less sign-in) and the second-factor page.

A challenge is issued with the page that uses it, stored under the digest of this browser's
cookie and the place (so it counts only in this browser and there), lives CHALLENGE_SECONDS
and is taken once by the post that answers it, before anything else is checked (§13.4.3: a
challenge is never reused)."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn.helpers import exceptions as webauthn_errors
from webauthn.helpers.structs import (
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from idp.crypto.handles import digest
from idp.locales import N_, gettext
from idp.services.context import Context
from idp.services.signin import security_events
from idp.settings import Settings
from idp.store import passkeys as store
from idp.store.models import Passkey
from idp.store.prepared import Connection

CHALLENGE_SECONDS = 300
TIMEOUT_MS = CHALLENGE_SECONDS * 1000
# A registration or assertion response is a few hundred bytes to a few KiB (attestation
# certificates); anything far larger is refused before it is parsed.
MAX_CREDENTIAL_CHARS = 16 * 1024

REFUSED = N_("That passkey could not sign you in. Try again, or sign in with your email "
             "address and password.")
EXPIRED = N_("This passkey request has expired or was already used. Try again.")
MALFORMED = N_("Your browser sent an answer we could not read. Try again.")
CLONED = N_("That passkey could not be used: its sign-in counter went backwards, which can mean "
            "it was copied. Sign in another way, then check the passkeys in your account.")

# The errors py_webauthn raises for an answer that does not verify or does not parse.
VERIFY_ERRORS = (webauthn_errors.WebAuthnException, ValueError, KeyError, TypeError,
                 binascii.Error)


class PasskeyRefused(Exception):
    """Shown on the page, in words for the customer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = gettext(message)  # a catalog text (idp.locales), in the page's language


class CounterRegressed(PasskeyRefused):
    """The counter rule refused a passkey: recorded by `record_regression` once the caller's
    unit of work has rolled back."""

    def __init__(self, user_id: str, name: str, stored: int, received: int) -> None:
        super().__init__(CLONED)
        self.user_id, self.name, self.stored, self.received = user_id, name, stored, received


async def record_regression(ctx: Context, refused: CounterRegressed) -> None:
    async with ctx.db.transaction() as session:
        security_events.record(session, security_events.PASSKEY_COUNTER_REGRESSED,
                               refused.user_id, ctx.now(), passkey=refused.name,
                               stored=refused.stored, received=refused.received)


def rp_id(settings: Settings) -> str:
    """§5.1.2 / §13.4.9: the RP ID is the issuer's host (its effective domain)."""
    return urlsplit(settings.issuer).hostname or ""


def rp_origin(settings: Settings) -> str:
    parts = urlsplit(settings.issuer)
    return f"{parts.scheme}://{parts.netloc}"


def challenge_key(browser_id: str, place: str) -> str:
    return digest(f"{browser_id}|passkey|{place}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def store_challenge(ctx: Context, connection: Connection, key: str,
                          user_id: str | None) -> bytes:
    challenge = secrets.token_bytes(32)  # §13.4.3: at least 16 random bytes
    await store.put_challenge(connection, key, b64url(challenge), user_id,
                              ctx.now() + CHALLENGE_SECONDS)
    return challenge


async def consume_challenge(ctx: Context, key: str, user_id: str | None) -> bytes:
    """The challenge waiting under `key` for `user_id`, used up in a unit of work of its own
    that commits before the answer is checked, so a refused answer uses it up too (§13.4.3).
    PasskeyRefused when there is none."""
    async with ctx.db.transaction() as session:
        row = await store.take_challenge(session, key, ctx.now())
    if row is None or row.user_id != user_id:
        raise PasskeyRefused(EXPIRED)
    return from_b64url(row.challenge)


async def authentication_options(ctx: Context, session: AsyncSession, key: str,
                                 user_id: str) -> str:
    """PublicKeyCredentialRequestOptions as JSON for a second factor: that account's
    credentials only."""
    allowed = [PublicKeyCredentialDescriptor(id=from_b64url(p.credential_id))
               for p in await store.passkeys_of_user(session, user_id)]
    return _request_options(ctx, await store_challenge(ctx, session, key, user_id), allowed)


async def usernameless_options(ctx: Context, connection: Connection, key: str) -> str:
    """PublicKeyCredentialRequestOptions as JSON for the login page: an empty
    allowCredentials, so the authenticator offers its discoverable credentials (§5.4.6)."""
    return _request_options(ctx, await store_challenge(ctx, connection, key, None), None)


def _request_options(ctx: Context, challenge: bytes,
                     allowed: list[PublicKeyCredentialDescriptor] | None) -> str:
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(ctx.settings), challenge=challenge, timeout=TIMEOUT_MS,
        allow_credentials=allowed, user_verification=UserVerificationRequirement.PREFERRED)
    return webauthn.options_to_json(options)


def parse_credential(credential: str) -> dict[str, Any]:
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        raise PasskeyRefused(MALFORMED)
    try:
        parsed = json.loads(credential)
    except ValueError:
        raise PasskeyRefused(MALFORMED) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("response"), dict) or \
            not isinstance(parsed.get("id"), str) or len(parsed["id"]) > 1400:
        raise PasskeyRefused(MALFORMED)
    return parsed


@dataclass(frozen=True)
class Asserted:
    passkey: Passkey
    user_verified: bool

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176 §2: "swk" (proof of possession of a software-secured key) for a
        backup-eligible, synced passkey, whose private key leaves the device; "hwk"
        (hardware-secured key) for a device-bound one. "user" (user presence test): every
        assertion we accept has the UP flag (§7.2 step 16). "mfa" when the authenticator
        also verified the user (UV flag, §6.1: a PIN or biometric on top of the key)."""
        key = "swk" if self.passkey.device_type == "multi_device" else "hwk"
        return (key, "user", "mfa") if self.user_verified else (key, "user")


async def verify_assertion(ctx: Context, session: AsyncSession, challenge: bytes,
                           parsed: dict[str, Any], user_id: str | None) -> Asserted:
    """Check an assertion answering `challenge` (consumed) in the caller's unit of work:
    §7.2 through py_webauthn, the user handle (step 6), then the counter rule; the passkey's
    counter, backup state and last use are updated. `user_id`: the account already
    identified (second factor), None for a username-less sign-in. PasskeyRefused otherwise."""
    passkey = await store.by_credential_id(session, parsed["id"])
    if passkey is None or (user_id is not None and passkey.user_id != user_id):
        raise PasskeyRefused(REFUSED)
    handle = parsed["response"].get("userHandle")
    # §7.2 step 6: a username-less assertion names its account by the user handle, which
    # must be the credential's owner; when the account was identified first, any handle
    # given must be it too.
    if (handle is None and user_id is None) or (
            handle is not None and _handle(handle) != passkey.user_id.encode()):
        raise PasskeyRefused(REFUSED)
    try:
        # The counter rule is ours (below), after the signature checks out: current 0.
        verified = webauthn.verify_authentication_response(
            credential=parsed, expected_challenge=challenge,
            expected_rp_id=rp_id(ctx.settings), expected_origin=rp_origin(ctx.settings),
            credential_public_key=passkey.public_key, credential_current_sign_count=0)
    except VERIFY_ERRORS:
        raise PasskeyRefused(REFUSED) from None
    new = verified.new_sign_count
    # §6.1.1: a counter that does not grow past the stored one, when either is non-zero, is
    # a sign the authenticator may have been cloned; refused and recorded (§7.2 step 21).
    if (new or passkey.sign_count) and new <= passkey.sign_count:
        raise CounterRegressed(passkey.user_id, passkey.name, passkey.sign_count, new)
    if not await store.record_use(session, passkey.id, passkey.sign_count, new,
                                  verified.credential_backed_up, ctx.now()):
        raise PasskeyRefused(REFUSED)
    return Asserted(passkey, verified.user_verified)


def _handle(text: object) -> bytes | None:
    if not isinstance(text, str) or len(text) > 128:
        return None
    try:
        return from_b64url(text)
    except (ValueError, binascii.Error):
        return None
