"""What a new password or email address must be: the rules every page that sets one applies
(registration, a reset, a change, an operator's account)."""

from __future__ import annotations

import functools

from idp.locales import gettext, ngettext
from idp.services.context import Context


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public breaches, as zxcvbn ships them (offline;
    loaded once, on first use: about 60 ms)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(ctx: Context, password: str, email: str | None = None) -> str | None:
    """Why a new password cannot be chosen, or None. NIST SP 800-63B §3.1.1.2: a length
    range and no composition rules, but not a password of breach lists, nor one built on
    the account's own address (a context-specific word)."""
    if len(password) < ctx.settings.password_min_length:
        return ngettext("Choose a password of at least %(num)s character.",
                        "Choose a password of at least %(num)s characters.",
                        ctx.settings.password_min_length)
    if len(password) > ctx.settings.password_max_length:
        return ngettext("Choose a password of at most %(num)s character.",
                        "Choose a password of at most %(num)s characters.",
                        ctx.settings.password_max_length)
    folded = password.casefold()
    if folded in common_passwords():
        return gettext("That password is one of the most common ones, which attackers try "
                       "first. Choose another.")
    local = (email or "").strip().casefold().partition("@")[0]
    if len(local) >= 3 and local in folded:
        return gettext("Choose a password that does not contain your email address.")
    return None


def email_problem(email: str) -> str | None:
    email = email.strip()
    local, _, domain = email.rpartition("@")
    # Control characters (NUL among them, which PostgreSQL cannot store) are never valid.
    if not local or "." not in domain or len(email) > 254 or any(
        c.isspace() or not c.isprintable() for c in email
    ):
        return gettext("Enter a valid email address.")
    return None
