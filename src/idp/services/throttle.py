"""Brute-force and credential-stuffing throttling for every password check (security.md §5
ATO-01 to ATO-04).

Each attempt is counted *before* the password is verified, in one atomic upsert per key, so N
parallel guesses count N (Keycloak issues/31726) and the sixth of six simultaneous guesses is
already held back. A correct password clears the account's counter and gives its attempt back
to the source. Two keys per attempt:

- the account: a digest of the submitted email, whether or not an account has it, so throttling
  tells nothing about which addresses exist. A few free failures, then a delay that doubles from
  1 s up to a cap; never a hard lockout (lockout-DoS, Keycloak GHSA-cq42-vhv7-xr7p).
- the source network (/24 for IPv4, /64 for IPv6) across all accounts, with a cap per window.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import digest
from idp.services.context import Context
from idp.settings import Settings
from idp.store.models import Throttle
from idp.store.users import normalize_email

# How long a run of failures on one account is remembered without a success.
RUN_MEMORY_SECONDS = 30 * 86_400

# The client address of the request being served, set by `idp.web.source.ClientSource`.
request_source: ContextVar[str | None] = ContextVar("request_source", default=None)


class Throttled(Exception):
    """Too many attempts: answered 429 with Retry-After (security.md ATO-02)."""

    def __init__(self, retry_after: int, what: str = "sign-in attempts") -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = max(1, retry_after)
        self.what = what  # "Too many {what}" on the 429 page


@dataclass(frozen=True)
class Attempt:
    account_key: str
    source_key: str | None


def account_key(email: str) -> str:
    """The whole address as the account lookup sees it (normalised, any length): a key taken
    from a truncated or differently spelled address would give each spelling its own free
    attempts (security review: padding with spaces past a length cut)."""
    return "acct:" + digest(normalize_email(email))


def source_key(address: str | None) -> str | None:
    """The network an address belongs to: /24 (IPv4) or /64 (IPv6); None if unparseable."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return "net:" + str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def account_delay(settings: Settings, failures: int) -> int:
    """Seconds to wait after `failures` consecutive failures (0 while they are free)."""
    beyond = failures - settings.throttle_free_failures
    if beyond < 0:
        return 0
    return int(min(settings.throttle_max_delay_seconds, 2 ** min(beyond, 30)))


async def begin_attempt(ctx: Context, email: str) -> Attempt:
    """Count one password attempt against the account and the source; Throttled if either is
    still held back. A held-back attempt is not counted (the unit of work rolls back), so
    waiting out the delay always works."""
    attempt = Attempt(account_key(email), source_key(request_source.get()))
    settings, now = ctx.settings, ctx.now()
    async with ctx.db.transaction() as session:
        dialect = session.get_bind().dialect.name
        # ATO-01: the account's window forgets a few stray failures, never a run of them: once
        # past the free ones, only a success starts the account afresh (a daily reset would
        # give an attacker a new allowance every day).
        failures = await _count(session, dialect, attempt.account_key, now,
                                settings.throttle_account_window_seconds,
                                keep_from=settings.throttle_free_failures)
        if delay := account_delay(settings, failures):
            await _block(session, attempt.account_key, now + delay)
        if attempt.source_key is not None:
            window = settings.throttle_source_window_seconds
            failures = await _count(session, dialect, attempt.source_key, now, window)
            if failures >= settings.throttle_source_failures:
                started = await session.scalar(select(Throttle.window_started_at).where(
                    Throttle.key == attempt.source_key))
                await _block(session, attempt.source_key, (started or now) + window)
    return attempt


async def succeeded(ctx: Context, attempt: Attempt) -> None:
    """The password was right: the account starts afresh and the source gets its attempt back."""
    async with ctx.db.transaction() as session:
        await session.execute(delete(Throttle).where(Throttle.key == attempt.account_key))
        if attempt.source_key is not None:
            await session.execute(
                update(Throttle)
                .where(Throttle.key == attempt.source_key, Throttle.failures > 0)
                .values(failures=Throttle.failures - 1))


EXPORTS_PER_WINDOW = 5
EXPORT_WINDOW_SECONDS = 3600


async def count_export(ctx: Context, user_id: str) -> None:
    """security.md PRIV-04: data exports are rate-limited, EXPORTS_PER_WINDOW per account per
    hour, counted with the same atomic upsert as password attempts; Throttled past that. The
    key holds a digest of the user id, so no counter names an erased account."""
    key, now = "export:" + digest(user_id), ctx.now()
    async with ctx.db.transaction() as session:
        dialect = session.get_bind().dialect.name
        try:
            count = await _count(session, dialect, key, now, EXPORT_WINDOW_SECONDS)
        except Throttled as held:
            raise Throttled(held.retry_after, what="downloads of your data") from None
        if count >= EXPORTS_PER_WINDOW:
            started = await session.scalar(select(Throttle.window_started_at).where(
                Throttle.key == key))
            await _block(session, key, (started or now) + EXPORT_WINDOW_SECONDS)


async def _count(session: AsyncSession, dialect: str, key: str, now: int, window: int,
                 keep_from: int | None = None) -> int:
    """One more attempt for `key` in its current window, atomically; returns the new count.
    The update applies only while the key is not held back: the row lock taken by the upsert
    makes a parallel attempt wait and then see the block the first one set. With `keep_from`,
    a count that reached it outlives its window."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    expired = Throttle.window_started_at <= now - window
    if keep_from is not None:
        expired = and_(expired, Throttle.failures < keep_from)
    values = insert(Throttle).values(key=key, failures=1, window_started_at=now,
                                     blocked_until=0)
    statement = values.on_conflict_do_update(
        index_elements=[Throttle.key],
        set_={
            "failures": case((expired, 1), else_=Throttle.failures + 1),
            "window_started_at": case((expired, now), else_=Throttle.window_started_at),
        },
        where=Throttle.blocked_until <= now,
    ).returning(Throttle.failures)
    failures = (await session.execute(statement)).scalar_one_or_none()
    if failures is None:
        until = await session.scalar(select(Throttle.blocked_until).where(Throttle.key == key))
        raise Throttled((until or now) - now)
    return int(failures)


async def _block(session: AsyncSession, key: str, until: int) -> None:
    await session.execute(update(Throttle).where(Throttle.key == key).values(blocked_until=until))


async def purge(session: AsyncSession, now: int, settings: Settings) -> None:
    """Forget counters whose window and delay are both over (the maintenance loop); a run of
    failures past the free ones is kept for RUN_MEMORY_SECONDS."""
    oldest = now - max(settings.throttle_account_window_seconds,
                       settings.throttle_source_window_seconds)
    await session.execute(delete(Throttle).where(
        Throttle.window_started_at <= oldest, Throttle.blocked_until <= now,
        or_(Throttle.failures < settings.throttle_free_failures,
            Throttle.window_started_at <= now - RUN_MEMORY_SECONDS)))


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted_proxies: Sequence[str]) -> str | None:
    """ATO-04 / RFC 9700 §4.13: X-Forwarded-For is believed only from a trusted proxy, read
    right to left, and the first hop that is not a trusted proxy is the client. A malformed
    entry stops the walk at the last trusted hop; it never skips the policy."""
    networks = []
    for proxy in trusted_proxies:
        try:
            networks.append(ipaddress.ip_network(proxy, strict=False))
        except ValueError:
            continue

    def trusted(address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in networks)

    client = peer
    if not trusted(peer):
        return client
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not trusted(hop):
            return client
    return client
