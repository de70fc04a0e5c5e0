"""Brute-force and credential-stuffing throttling for every password check (security.md §5
ATO-01 to ATO-04).

Each attempt is counted *before* the password is verified, in one atomic upsert per key, so N
parallel guesses count N (Keycloak issues/31726) and the sixth of six simultaneous guesses is
already held back. A correct password clears the account's counter and gives its attempt back
to the source. Two keys per attempt:

- the account: a digest of the submitted email, whether or not an account has it, so throttling
  tells nothing about which addresses exist. A few free failures, then a delay that doubles from
  1 s up to a cap; never a hard lockout (lockout-DoS, Keycloak GHSA-cq42-vhv7-xr7p).
- the source network (/24 for IPv4, /64 for IPv6) across all accounts: an allowance per
  window, then the same doubling delay, never an hour-long wall.

A browser that signed in to the account before (a device cookie, `devices`) is counted on its
own key alone: what an attacker does to the account or from the same carrier's address never
holds it back, and its own failures are delayed like an account's.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest
from idp.errors import Throttled
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin.devices import remember, trusted_device
from idp.settings import Settings
from idp.store import throttles as throttle_store
from idp.store.prepared import Connection
from idp.store.users import normalize_email

# How long a run of failures on one account is remembered without a success.
RUN_MEMORY_SECONDS = 30 * 86_400

# The client address of the request being served, set by `idp.web.source.ClientSource`.
request_source: ContextVar[str | None] = ContextVar("request_source", default=None)


@dataclass(frozen=True)
class Attempt:
    account_key: str
    source_key: str | None
    device_key: str | None = None  # set when a device cookie vouched for this browser


def account_key(email: str) -> str:
    """The whole address as the account lookup sees it (normalised, any length): a key taken
    from a truncated or differently spelled address would give each spelling its own free
    attempts (security review: padding with spaces past a length cut)."""
    return "acct:" + digest(normalize_email(email))


@lru_cache(maxsize=4096)
def source_key(address: str | None) -> str | None:
    """The network an address belongs to: /24 (IPv4) or /64 (IPv6); None if unparseable.
    Kept per address: a password sign-in asks three times (the count, the session's network,
    the security event), and parsing cost some 20 us each time."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return "net:" + str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def counted_alone(ctx: Context, email: str) -> bool:
    """Whether a password attempt for `email` from this browser counts on one key alone (the
    browser's own, as one the account knows)."""
    return trusted_device(ctx, account_key(email)) is not None


async def begin_attempt(ctx: Context, session: Connection, email: str) -> Attempt:
    """Count one password attempt against the account and the source in the caller's unit of
    work; Throttled if either is still held back. A held-back attempt is not counted (the unit
    of work rolls back), so waiting out the delay always works. The caller commits before the
    password is verified, so parallel guesses see each other's attempts."""
    settings, now = ctx.settings, ctx.now()
    account = account_key(email)
    device = trusted_device(ctx, account)
    # ATO-01: the account's window forgets a few stray failures, never a run of them: once
    # past the free ones, only a success starts the account afresh (a daily reset would
    # give an attacker a new allowance every day). A device's counter works the same way.
    await _count_delayed(session, device or account, now,
                         settings.throttle_account_window_seconds,
                         free=settings.throttle_free_failures,
                         most=settings.throttle_max_delay_seconds,
                         keep_from=settings.throttle_free_failures)
    if device is not None:
        return Attempt(account, None, device)
    attempt = Attempt(account, source_key(request_source.get()))
    await _count_source(ctx, session, attempt)
    return attempt


async def succeeded(ctx: Context, session: Connection, attempt: Attempt) -> None:
    """The password was right: the account (or the device) starts afresh, the source gets its
    attempt back, and the browser is remembered as one that signed in to this account."""
    await throttle_store.forget(session, attempt.device_key or attempt.account_key)
    if attempt.source_key is not None:
        await throttle_store.give_back(session, attempt.source_key)
    remember(ctx, attempt.account_key)


async def forget_account(session: AsyncSession, email: str) -> None:
    """The account's counter goes with the account (erasure)."""
    await throttle_store.forget(session, account_key(email))


async def begin_code_attempt(ctx: Context, session: Connection, user_id: str) -> Attempt:
    """Count one second-factor code (an app's code or a recovery code) before it is checked,
    like a password (ATO-03: the MFA code path too): against the account, with the same
    growing delay and never a hard lockout, and against the source network's allowance,
    shared with passwords. Only someone past the account's first factor gets here, so no
    device cookie stands in. Throttled while held back; the caller commits before checking."""
    settings, now = ctx.settings, ctx.now()
    account = "otp:" + digest(user_id)
    await _count_delayed(session, account, now, settings.throttle_account_window_seconds,
                         free=settings.throttle_free_failures,
                         most=settings.throttle_max_delay_seconds,
                         keep_from=settings.throttle_free_failures)
    attempt = Attempt(account, source_key(request_source.get()))
    await _count_source(ctx, session, attempt)
    return attempt


async def _count_source(ctx: Context, session: Connection, attempt: Attempt) -> None:
    """One more attempt from the attempt's network, with the password's allowance and delay
    (ATO-02); Throttled while held back."""
    if attempt.source_key is not None:
        await _count_delayed(session, attempt.source_key, ctx.now(),
                             ctx.settings.throttle_source_window_seconds,
                             free=ctx.settings.throttle_source_failures,
                             most=ctx.settings.throttle_max_delay_seconds)


async def code_succeeded(session: Connection, attempt: Attempt) -> None:
    """A right code: the account's code counter starts afresh, the network gets it back."""
    await throttle_store.forget(session, attempt.account_key)
    if attempt.source_key is not None:
        await throttle_store.give_back(session, attempt.source_key)


async def begin_passkey_attempt(ctx: Context, session: Connection) -> Attempt:
    """Count a username-less passkey assertion before it is checked: the account is not known
    until the credential is looked up, so against the source network's allowance alone,
    shared with passwords (ATO-02); Throttled while held back."""
    attempt = Attempt("", source_key(request_source.get()))
    await _count_source(ctx, session, attempt)
    return attempt


async def passkey_succeeded(session: Connection, attempt: Attempt) -> None:
    if attempt.source_key is not None:
        await throttle_store.give_back(session, attempt.source_key)


EXPORTS_PER_WINDOW = 5
EXPORT_WINDOW_SECONDS = 3600


async def count_export(ctx: Context, user_id: str) -> None:
    """security.md PRIV-04: data exports are rate-limited, EXPORTS_PER_WINDOW per account per
    hour, counted with the same atomic upsert as password attempts; Throttled past that. The
    key holds a digest of the user id, so no counter names an erased account."""
    await _capped(ctx, "export:" + digest(user_id), EXPORT_WINDOW_SECONDS,
                  EXPORTS_PER_WINDOW, "downloads of your data")


async def _capped(ctx: Context, key: str, window: int, cap: int, what: str) -> None:
    """One more request on `key`, `cap` allowed per `window`; Throttled (about `what`)
    past that."""
    async with ctx.db.transaction() as session:
        try:
            await _count(session, key, ctx.now(), window, cap=cap)
        except Throttled as held:
            raise Throttled(held.retry_after, what=what) from None


RESETS_PER_ADDRESS = 3
RESETS_PER_NETWORK = 30
RESET_WINDOW_SECONDS = 3600


async def count_reset_request(ctx: Context, email: str) -> None:
    """Password reset requests (security.md ATO): RESETS_PER_ADDRESS per address and
    RESETS_PER_NETWORK per source network an hour, whether or not an account has the
    address, so a mailbox cannot be flooded and the limit tells nothing; Throttled past
    either."""
    await _count_mail_request(ctx, email, "reset", "password reset requests")


async def count_signup_request(ctx: Context, email: str) -> None:
    """Registration requests (issue 12 item 2), mailed like reset links and limited the same
    way on counters of their own."""
    await _count_mail_request(ctx, email, "signup", "registration requests")


async def _count_mail_request(ctx: Context, email: str, prefix: str, what: str) -> None:
    now = ctx.now()
    network = source_key(request_source.get())
    async with ctx.db.transaction() as session:
        try:
            await _count(session, f"{prefix}:" + digest(normalize_email(email)), now,
                         RESET_WINDOW_SECONDS, cap=RESETS_PER_ADDRESS)
            if network is not None:
                await _count(session, f"{prefix}net:" + network, now, RESET_WINDOW_SECONDS,
                             cap=RESETS_PER_NETWORK)
        except Throttled as held:
            raise Throttled(held.retry_after, what=what) from None


EMAIL_CHANGES_PER_WINDOW = 3


async def count_email_change(ctx: Context, user_id: str) -> None:
    """Address change requests: EMAIL_CHANGES_PER_WINDOW per account an hour, so the account
    center cannot be used to flood other people's mailboxes."""
    await _capped(ctx, "emailchange:" + digest(user_id), RESET_WINDOW_SECONDS,
                  EMAIL_CHANGES_PER_WINDOW, "address change requests")


REGISTRATION_WINDOW_SECONDS = 3600


async def count_registration(ctx: Context) -> None:
    """Dynamic client registration requests (RFC 7591 §5: the endpoint may be open to
    anyone): IDP_REGISTRATION_PER_HOUR per source network, successful or not; Throttled
    past that. Requests whose source cannot be told share one counter."""
    await _capped(ctx, "reg:" + (source_key(request_source.get()) or "unknown"),
                  REGISTRATION_WINDOW_SECONDS, ctx.settings.registration_per_hour,
                  "client registrations")


USER_CODES_PER_NETWORK = 30
USER_CODE_WINDOW_SECONDS = 900


async def count_user_code_entry(ctx: Context) -> None:
    """Device user codes entered (RFC 8628 §5.1): USER_CODES_PER_NETWORK per source network
    in a quarter of an hour, right or wrong; Throttled past that. With 20^8 codes and a
    thousand requests waiting at once, a network guessing at the limit expects one hit in
    about 24 years, and a hit only signs a stranger's device in to the guesser's own
    account (the device gets tokens for whoever approves it). Entries whose source cannot
    be told share one counter."""
    await _capped(ctx, "usercode:" + (source_key(request_source.get()) or "unknown"),
                  USER_CODE_WINDOW_SECONDS, USER_CODES_PER_NETWORK, "codes entered")


async def purge(session: AsyncSession, now: int, settings: Settings) -> None:
    """Forget counters whose window and delay are both over (the maintenance loop); a run of
    failures past the free ones is kept for RUN_MEMORY_SECONDS."""
    await throttle_store.purge(
        session, now,
        window=max(settings.throttle_account_window_seconds,
                   settings.throttle_source_window_seconds),
        keep_from=settings.throttle_free_failures, keep_runs_for=RUN_MEMORY_SECONDS)


async def _count(session: Connection, key: str, now: int, window: int, *,
                 cap: int | None = None, keep_from: int | None = None) -> int:
    failures = await throttle_store.count_in_window(session, key, now, window, cap=cap,
                                                    keep_from=keep_from)
    if failures is None:
        await _held_back(session, key, now)
    return failures


async def _count_delayed(session: Connection, key: str, now: int, window: int, *, free: int,
                         most: int, keep_from: int | None = None) -> None:
    """One more attempt on `key`; past `free` of them it waits the doubling delay, set with
    the count in one statement (so the caller needs no transaction for this key alone)."""
    failures = await throttle_store.count_with_delay(
        session, key, now, window, free=free, most=most, keep_from=keep_from)
    if failures is None:
        await _held_back(session, key, now)


async def _held_back(session: Connection, key: str, now: int) -> NoReturn:
    until = await throttle_store.held_until(session, key)
    # What was held back: the key's kind (acct, net, dev, export), never the key.
    metrics.THROTTLED.labels(key.partition(":")[0]).inc()
    raise Throttled((until or now) - now)
