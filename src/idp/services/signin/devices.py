"""Device cookies: a browser that has signed in to an account before is not held back by
what strangers do to that account or from its network (OWASP "Slow Down Online Guessing
Attacks with Device Cookies"; security.md ATO-01, ATO-02).

Mobile carriers and offices put thousands of customers behind one address, so the
per-network limit alone would lock all of them out during one attacker's run. At each
successful password sign-in the browser gets an entry `nonce.mac`, the MAC binding the nonce
to the account (the digest of its address), so the cookie names no account and cannot be
moved to another. A password attempt that presents a valid entry for the account it names
is counted against that entry alone, with the same growing delay as an account, and skips
the account and network counters; every other attempt is counted as before.

The web layer (`idp.web.source.ClientSource`) reads the cookie into `request_devices` and
writes back what `remember` issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache

from idp.crypto.handles import new_handle
from idp.crypto.keys import derive_key
from idp.services.context import Context

MAX_ENTRIES = 5  # accounts a shared browser is remembered for
MAX_COOKIE_LENGTH = 1024
DEVICE_COOKIE_DAYS = 400  # browsers cap cookie lifetimes at 400 days


@dataclass
class DeviceCookie:
    """What the browser presented, and what this request gives it back (None: unchanged)."""

    presented: tuple[str, ...]
    issued: str | None = field(default=None)
    # The presented entry found for each account key asked about (`_entry_for`): a password
    # sign-in asks four times, and each time checked a MAC per entry.
    found: dict[str, str | None] = field(default_factory=dict)


request_devices: ContextVar[DeviceCookie | None] = ContextVar("request_devices", default=None)


def parse(value: str | None) -> tuple[str, ...]:
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return ()
    return tuple(entry for entry in value.split("~") if entry.count(".") == 1)[:MAX_ENTRIES]


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return derive_key(secret, "device-cookie")


def _mac(ctx: Context, account_key: str, nonce: str) -> str:
    mac = hmac.new(_key(ctx.settings.resolved_key_secret()), f"{account_key}|{nonce}".encode(),
                   hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _entry_for(ctx: Context, account_key: str) -> str | None:
    """The presented entry that binds this browser to the account, if any."""
    cookie = request_devices.get()
    if cookie is None:
        return None
    if account_key not in cookie.found:
        cookie.found[account_key] = next(
            (entry for entry in cookie.presented if _binds(ctx, entry, account_key)), None)
    return cookie.found[account_key]


def _binds(ctx: Context, entry: str, account_key: str) -> bool:
    nonce, _, mac = entry.partition(".")
    return hmac.compare_digest(_mac(ctx, account_key, nonce), mac)


def trusted_device(ctx: Context, account_key: str) -> str | None:
    """The throttle key of this browser for this account, if it signed in to it before."""
    entry = _entry_for(ctx, account_key)
    if entry is None:
        return None
    return "device:" + hashlib.sha256(entry.partition(".")[0].encode()).hexdigest()


def remember(ctx: Context, account_key: str) -> None:
    """After a successful sign-in: this browser is known to the account from now on (its
    entry moves to the front; the oldest of other accounts' entries make room)."""
    cookie = request_devices.get()
    if cookie is None:
        return  # not a browser request (the CLI, a test calling the service directly)
    mine = _entry_for(ctx, account_key)
    if mine is None:
        nonce = new_handle(12)
        mine = f"{nonce}.{_mac(ctx, account_key, nonce)}"
    others = [entry for entry in cookie.presented if entry != mine]
    cookie.issued = "~".join([mine, *others][:MAX_ENTRIES])
