"""Second-factor secrets: TOTP codes of a customer's authenticator app (RFC 6238) and the
recovery codes that stand in for it (look-up secrets, NIST SP 800-63B §5.1.2). Plain functions
over secrets and times: no database, no web."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pyotp

# RFC 6238 §5.2 recommends 30 s; ASVS 6.5.5 asks for at most 30 s. Six digits, SHA-1: what
# every authenticator app reads from an otpauth:// URI without further parameters.
STEP_SECONDS = 30
DIGITS = 6
# RFC 6238 §5.2: accept at most one step of clock drift or typing delay either side.
WINDOW = 1
# ATO-09 and RFC 4226 §4 R6: a shared secret of 160 bits, 32 characters of base32.
SECRET_LENGTH = 32
# The longest answer a second-factor form reads; anything longer is refused unread.
MAX_CODE_LENGTH = 64

_TOTP_CODE = re.compile(r"[0-9]{6}")

# Recovery codes: Crockford's base32 alphabet (no i, l, o, u), so nothing reads as another
# character; 12 characters are 60 random bits, shown as xxxx-xxxx-xxxx.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_LENGTH = 12
RECOVERY_COUNT = 10
_READ_AS = str.maketrans({"o": "0", "i": "1", "l": "1"})


def new_secret() -> str:
    return pyotp.random_base32(SECRET_LENGTH)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code (Key Uri Format)."""
    return _totp(secret).provisioning_uri(name=account, issuer_name=issuer)


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def time_step(now: int) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0."""
    return now // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    return _totp(secret).generate_otp(step)


def totp_code(value: str) -> str | None:
    """The six digits typed (spaces allowed between them), or None when it is not a TOTP
    code. ASCII digits only: str.isdigit would let other scripts' digits through."""
    compact = "".join(value.split())
    return compact if _TOTP_CODE.fullmatch(compact) else None


def matching_step(secret: str, code: str, now: int) -> int | None:
    """The time step within the window whose code `code` is, or None. Every step of the window
    is compared, each in constant time, so the answer's timing tells nothing of which one
    matched; of two that match (one chance in a million) the later, so replay protection
    holds back the most."""
    current = time_step(now)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(code_at(secret, step).encode(), code.encode()):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    return [_grouped_recovery("".join(secrets.choice(RECOVERY_ALPHABET)
                                      for _ in range(RECOVERY_LENGTH)))
            for _ in range(RECOVERY_COUNT)]


def _grouped_recovery(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, RECOVERY_LENGTH, 4))


def recovery_code(value: str) -> str | None:
    """A recovery code in its canonical form (lower case, no separators; o read as 0, i and
    l as 1), or None when the value is not one."""
    compact = "".join(value.replace("-", " ").split()).lower().translate(_READ_AS)
    if len(compact) != RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in compact):
        return None
    return compact


def recovery_digest(key: bytes, user_id: str, code: str) -> str:
    """What is stored of a recovery code: an HMAC-SHA-256 under a key derived from the
    operator's secret, over the account and the canonical code. 60 random bits need no slow
    hash, and without the key a copy of the table cannot be searched at all."""
    canonical = recovery_code(code) or code
    return hmac.new(key, f"{user_id}|{canonical}".encode(), hashlib.sha256).hexdigest()
