"""RFC 8628 rules as plain functions: user codes and the device grant's constants."""

from __future__ import annotations

import secrets

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 §6.1: base-20 consonants, no vowels (no words spelled by accident), no letters
# easily confused with digits; 20^8 codes, about 34.5 bits, for a code that lives minutes and
# whose guessing is throttled (§5.1).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
# RFC 8628 §3.5: slow_down raises the interval by 5 seconds for this and every later poll.
SLOW_DOWN_STEP = 5


def new_user_code() -> str:
    """A fresh user code in its canonical form (eight letters, no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(code: str) -> str:
    """How the device shows the code: XXXX-XXXX."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_user_code(entered: str) -> str | None:
    """RFC 8628 §6.1: what the customer typed, case- and dash-insensitive (spaces ignored
    too), in canonical form; None when it cannot be a user code at all."""
    if len(entered) > 32:
        return None
    code = "".join(ch for ch in entered.upper() if ch not in "- \t")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code
