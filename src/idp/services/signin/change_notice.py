"""The mail an account's owner gets when a way into the account changes: its password, two-step
sign-in and its recovery codes, its passkeys, its connected sign-in providers (security.md
ATO-15: an attacker who got in changes exactly these to stay in). Whoever made the change,
the customer, someone holding their session, or an operator, the address on the account hears
of it at once, with when and from which device, and where to take the account back.

Written to the outbox in the change's own unit of work (nothing is mailed for a change that
rolled back), in the account's language. The mail names the change and nothing else: no
secret, no code, no link that acts on the account by itself. Unlike the new-device notice
(idp.services.signin.session_devices) these are not limited per hour: each is a deliberate
change that needed a signed-in session and, for most, a fresh password or code.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from idp.locales import N_
from idp.notifications.mail import enqueue_mail
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.signin.devices import request_devices
from idp.services.signin.session_devices import request_device
from idp.services.upstream.providers import name_of
from idp.store.models import User

TEMPLATE = "account_change_notice"

# Each change as one whole sentence (whole sentences translate; pieces put together do not).
CHANGES = {
    security_events.PASSWORD_CHANGED: N_("The password of your %(brand)s account was changed."),
    security_events.PASSWORD_RESET: N_("The password of your %(brand)s account was reset with a "
                                       "link we mailed to this address."),
    security_events.TOTP_ENABLED: N_("Two-step sign-in was turned on for your %(brand)s "
                                     "account."),
    security_events.TOTP_REMOVED: N_("Two-step sign-in was turned off for your %(brand)s "
                                     "account."),
    security_events.RECOVERY_CODES_REGENERATED: N_(
        "New recovery codes were made for your %(brand)s account; the earlier ones no longer "
        "work."),
    security_events.PASSKEY_ADDED: N_("A passkey was added to your %(brand)s account."),
    security_events.PASSKEY_REMOVED: N_("A passkey was removed from your %(brand)s account."),
    security_events.IDENTITY_LINKED: N_("Signing in with %(provider)s was connected to your "
                                        "%(brand)s account."),
    security_events.IDENTITY_UNLINKED: N_("Signing in with %(provider)s was disconnected from "
                                          "your %(brand)s account."),
}


async def notify(ctx: Context, session: AsyncSession, user_id: str, now: int, *changes: str,
                 provider: str | None = None, by_operator: bool = False) -> None:
    """Put the notice of `changes` (keys of CHANGES, made together) in one mail to the
    account's address in the outbox, in the caller's unit of work; the caller wakes the
    outbox once it commits. `provider`: the upstream's alias, named in the mail as the login
    page names it. An account without an address (an upstream that gave none) gets
    nothing."""
    user = await session.get(User, user_id)
    if user is None or not user.email:
        return
    # The device and network of the request that made the change: never an operator's (their
    # tool and network are not the customer's business, nor an attacker's to learn).
    served = request_devices.get() is not None and not by_operator
    device, network = request_device() if served else (None, None)
    issuer = ctx.settings.issuer  # never the Host header (ATO-10)
    enqueue_mail(session, ctx.settings, user.email, TEMPLATE, {
        "brand": ctx.settings.controller_name, "changes": [CHANGES[kind] for kind in changes],
        "provider": await name_of(session, provider) if provider else "",
        "by_operator": by_operator, "at": now, "device": device, "network": network,
        "reset_link": f"{issuer}/account/forgot",
        "security_link": f"{issuer}/account/security",
        "sessions_link": f"{issuer}/account/sessions",
    }, now, locale=user.ui_locale)
