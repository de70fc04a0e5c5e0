"""The second factor at sign-in (issue 12 item 6; security.md ATO-09).

After a right first factor (a password, an upstream provider) an account with an authenticator
app is not signed in yet: what the first factor proved waits in a `PendingSignIn`, keyed by
the digest of this browser's cookie and the place the sign-in continues (an interaction, the
account center's sign-in, a re-authentication), and ends with its interaction. Only a code of
the app or a recovery code given in the same browser turns it into a session, so a password
alone never produces one, and no cookie ever says "the password was right".

A code is counted before it is checked (throttled like a password: per account and per
network, a growing delay, never a hard lockout), then checked in the unit of work that uses it
up and starts the session, so the two stand or fall together.
"""

from __future__ import annotations

import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto import otp
from idp.crypto.handles import digest
from idp.crypto.keys import KeyEncryptor, derive_key
from idp.errors import Throttled
from idp.locales import N_, gettext
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin import security_events, throttle
from idp.store import factors as store
from idp.store.models import Interaction, PendingSignIn
from idp.store.prepared import Connection, orm_session

SECRET_PURPOSE = "totp-secret"
RECOVERY_PURPOSE = "recovery-codes"

# Places a sign-in continues at, besides an interaction ("interaction:{id}").
ACCOUNT = "account"
REAUTH = "reauth"

MALFORMED = N_("Enter the 6-digit code your authenticator app shows, or one of your recovery "
               "codes.")
WRONG = N_("That code is not right, or it has expired. Enter the code your app shows now.")
REPLAYED = N_("That code was already used. Wait for your app to show a new code, then "
              "enter it.")
RECOVERY_WRONG = N_("That recovery code is not right, or it was already used.")
GONE = N_("This sign-in has expired. Sign in again.")

# RFC 8176 §2: "otp" names RFC 4226/6238 one-time passwords, the app's codes; "mfa" says
# more than one factor was used. A recovery code is a look-up secret (NIST SP 800-63B
# §5.1.2), none of RFC 8176's methods: it adds "mfa" alone, so an app can tell a sign-in
# with the authenticator app from one that fell back to a printed code.
TOTP_AMR = ("otp", "mfa")
RECOVERY_AMR = ("mfa",)


class CodeRefused(Exception):
    """Shown on the second-factor page, in words that say what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = gettext(message)  # a catalog text (idp.locales), in the page's language


class SecondFactorRequired(Exception):
    """The first factor was right and the account has a second: continue at `location`.
    Raised once the unit of work that stored the pending sign-in has committed."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def interaction_place(interaction_id: str) -> str:
    return f"interaction:{interaction_id}"


def interaction_location(interaction_id: str) -> str:
    return f"/interaction/{interaction_id}/otp"


def pending_key(browser_id: str, place: str) -> str:
    return digest(f"{browser_id}|{place}")


def secret_encryptor(ctx: Context) -> KeyEncryptor:
    """TOTP secrets at rest: Fernet under a key derived from IDP_KEY_ENCRYPTION_SECRET for
    this purpose alone (as signing keys and upstream tokens are, each under its own)."""
    return KeyEncryptor(ctx.settings.resolved_key_secret(), SECRET_PURPOSE)


def recovery_key(ctx: Context) -> bytes:
    return derive_key(ctx.settings.resolved_key_secret(), RECOVERY_PURPOSE)


def combined_amr(first: list[str] | tuple[str, ...], added: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys([*first, *added]))


async def needs_second_factor(session: Connection, user_id: str) -> bool:
    """An authenticator app or a passkey: either one is asked for after a first factor."""
    return await store.has_second_factor(session, user_id)


async def known_or_read(session: Connection, user_id: str, known: bool | None) -> bool:
    """Whether the account has a second factor: `known` when the caller read it with the
    account (a password's lookup does), else read now."""
    return known if known is not None else await needs_second_factor(session, user_id)


async def wait_for_second_factor(ctx: Context, connection: Connection, user_id: str,
                                 browser_id: str, place: str, amr: list[str], *,
                                 expires_at: int, interaction_id: str | None = None,
                                 identity_id: str | None = None, link_hash: str | None = None,
                                 next_path: str | None = None) -> None:
    """In the caller's unit of work: the first factor waits for the second, in this browser
    and at this place only; a newer first factor there replaces it."""
    async with orm_session(connection) as session:
        await store.put_pending(session, PendingSignIn(
        id=pending_key(browser_id, place), interaction_id=interaction_id, user_id=user_id,
            amr=list(amr), identity_id=identity_id, link_hash=link_hash, next_path=next_path,
            created_at=ctx.now(), expires_at=expires_at))


async def wait_in_interaction(ctx: Context, session: Connection, interaction: Interaction,
                              user_id: str, browser_id: str, amr: list[str], *,
                              identity_id: str | None = None, link_hash: str | None = None,
                              has_second_factor: bool | None = None
                              ) -> SecondFactorRequired | None:
    """What to raise once the caller's unit of work commits when the account has a second
    factor (the first factor then waits, until the interaction ends); None when it has
    none and the caller signs the customer in. `has_second_factor`: whether it has, when
    the caller read it already (with the account, for a password)."""
    if not await known_or_read(session, user_id, has_second_factor):
        return None
    await wait_for_second_factor(
        ctx, session, user_id, browser_id, interaction_place(interaction.id), amr,
        expires_at=interaction.expires_at, interaction_id=interaction.id,
        identity_id=identity_id, link_hash=link_hash)
    return SecondFactorRequired(interaction_location(interaction.id))


async def pending_sign_in(ctx: Context, browser_id: str, place: str) -> PendingSignIn | None:
    """What waits for the second factor in this browser at `place` (detached), if anything."""
    async with ctx.db.transaction(read_only=True) as session:
        return await store.get_pending(session, pending_key(browser_id, place), ctx.now())


async def take_pending(ctx: Context, session: AsyncSession, pending: PendingSignIn) -> None:
    """End the wait in the caller's unit of work, once; CodeRefused when it is already over
    (another post of the same form signed in first)."""
    if not await store.take_pending(session, pending.id, pending.user_id, ctx.now()):
        raise CodeRefused(GONE)


async def count_code(ctx: Context, user_id: str) -> throttle.Attempt:
    """Count the attempt, committed before the code is checked, so parallel guesses all count;
    Throttled while held back."""
    try:
        async with ctx.db.atomic() as connection:
            return await throttle.begin_code_attempt(ctx, connection, user_id)
    except Throttled as held:
        metrics.SIGNINS.labels("otp", "throttled").inc()
        raise Throttled(held.retry_after, what="codes entered") from None


async def verify_code(ctx: Context, session: AsyncSession, user_id: str, code: str,
                      attempt: throttle.Attempt) -> tuple[str, ...]:
    """Check a code of the app or a recovery code in the caller's unit of work, using it up;
    returns what it adds to `amr`. CodeRefused, in words for the customer, otherwise."""
    if len(code) > otp.MAX_CODE_LENGTH:
        raise _refused(MALFORMED)
    six = otp.totp_code(code)
    if six is not None:
        added = await _verify_totp(ctx, session, user_id, six)
    else:
        recovery = otp.recovery_code(code)
        if recovery is None:
            raise _refused(MALFORMED)
        added = await _verify_recovery(ctx, session, user_id, recovery)
    await throttle.code_succeeded(session, attempt)
    metrics.SIGNINS.labels("otp", "success").inc()
    return added


def _refused(message: str) -> CodeRefused:
    metrics.SIGNINS.labels("otp", "failure").inc()
    return CodeRefused(message)


async def _verify_totp(ctx: Context, session: AsyncSession, user_id: str, code: str
                       ) -> tuple[str, ...]:
    factor = await store.totp_factor(session, user_id)
    if factor is None:
        raise _refused(WRONG)
    secret = str(secret_encryptor(ctx).decrypt(factor.secret_encrypted)["secret"])
    step = otp.matching_step(secret, code, ctx.now())
    if step is None:
        raise _refused(WRONG)
    if not await store.take_step(session, user_id, step):
        raise _refused(REPLAYED)
    return TOTP_AMR


async def _verify_recovery(ctx: Context, session: AsyncSession, user_id: str, code: str
                           ) -> tuple[str, ...]:
    wanted = otp.recovery_digest(recovery_key(ctx), user_id, code)
    found = None
    # Every unused code compared, each in constant time: the timing tells nothing of which.
    for row in await store.unused_recovery_codes(session, user_id):
        if hmac.compare_digest(row.code_hash, wanted):
            found = row.id
    now = ctx.now()
    if found is None or not await store.use_recovery_code(session, found, now):
        raise _refused(RECOVERY_WRONG)
    left = await store.count_unused_recovery_codes(session, user_id)
    security_events.record(session, security_events.RECOVERY_CODE_USED, user_id, now,
                           codes_left=left)
    return RECOVERY_AMR
