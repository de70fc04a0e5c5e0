"""Confirming who you are before changing sign-in methods, deleting or exporting the account
(federation.md §9 requirement 25): with the account's password, or with a round trip to a
connected provider (purpose "reauth") that succeeds only when the identity coming back is an
active one of this account. Either way the result is a fresh session (new id, auth_time now);
an account with a second factor gives it too before that (SecondFactorRequired), at
/account/reauth/otp.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.domain import SessionInfo
from idp.federation.identity import UpstreamIdentity
from idp.locales import N_
from idp.protocol.redirect_uri import well_formed
from idp.services.context import Context
from idp.services.signin import second_factor
from idp.services.signin.authentication import verify_password_login
from idp.services.signin.interaction import LoginFailed, start_session
from idp.services.signin.second_factor import (
    SecondFactorRequired,
    wait_for_second_factor,
)
from idp.services.upstream.state import REAUTH, start_round_trip
from idp.store import federation as store
from idp.store.models import User

# What the re-authentication page says after a round trip; {name} is the provider's.
# Catalog texts (idp.locales); %(name)s is the provider's.
OUTCOMES = {
    "reauth_cancelled": N_("Confirming with %(name)s was cancelled."),
    "reauth_failed": N_("Confirming with %(name)s did not work: %(name)s has to ask for your "
                        "sign-in again. Try again."),
    "mismatch": N_("That %(name)s account is not the one connected to this account."),
}
SECOND_FACTOR_LOCATION = "/account/reauth/otp"
# How long a right first factor waits for the second at the account center.
PENDING_SECONDS = 600


def safe_next(value: str | None) -> str:
    """A relative path under /account, or /account: `next` never leads off this site."""
    if not value or len(value) > 512 or not well_formed(value):
        # Nothing a parser would read differently from how it is written (white space,
        # controls, non-ASCII, a backslash that browsers take for a slash).
        return "/account"
    if "%" in value:
        # Browsers read %2e%2e as .. (URL standard): no encoded path at all, so the checks
        # below see the path the browser will follow.
        return "/account"
    parts = urlsplit(value)
    path = parts.path
    if parts.scheme or parts.netloc or value.startswith("//") or "//" in path or (
        path != "/account" and not path.startswith("/account/")
    ) or ".." in path.split("/"):
        return "/account"
    return value


def reauth_location(next_path: str) -> str:
    """The re-authentication page, which continues to `next_path` (already safe) after."""
    return f"/account/reauth?{urlencode({'next': next_path})}"


async def reauthenticate_with_password(ctx: Context, user: User, password: str,
                                       previous_cookie: str | None, browser_id: str,
                                       next_path: str) -> str:
    """A fresh session when `password` is the account's; LoginFailed otherwise, with the login
    page's words and work; SecondFactorRequired when the account has a second factor."""
    proved = await verify_password_login(ctx, user.email or "", password)
    if proved is None or proved.user.id != user.id:
        raise LoginFailed()
    async with ctx.db.transaction() as session:
        waiting = await _wait(ctx, session, user.id, browser_id, ["pwd"], next_path,
                              has_second_factor=proved.second_factor)
        if not waiting:
            cookie, _ = await start_session(ctx, session, user.id, previous_cookie)
    if waiting:
        raise SecondFactorRequired(SECOND_FACTOR_LOCATION)
    return cookie


async def _wait(ctx: Context, session: AsyncSession, user_id: str, browser_id: str,
                amr: list[str], next_path: str, identity_id: str | None = None,
                has_second_factor: bool | None = None) -> bool:
    """Whether the first factor waits for the account's second (stored when it does);
    `has_second_factor`: whether the account has one, when the caller read it already."""
    if not await second_factor.known_or_read(session, user_id, has_second_factor):
        return False
    await wait_for_second_factor(ctx, session, user_id, browser_id, second_factor.REAUTH, amr,
                                 expires_at=ctx.now() + PENDING_SECONDS,
                                 identity_id=identity_id, next_path=safe_next(next_path))
    return True


async def start_reauth(ctx: Context, alias: str, user: User, browser_id: str, next_path: str
                       ) -> str:
    """The upstream authorization URL that confirms the customer with a linked identity."""
    async with ctx.db.transaction() as session:
        # The providers offered on the page: an active identity of the account.
        active = {identity.alias for identity in await store.identities_of_user(session, user.id)
                  if identity.status == "active"}
    if alias not in active:
        raise errors.InvalidRequest("This sign-in method is not connected to your account",
                                    redirectable=False)
    return await start_round_trip(ctx, REAUTH, alias, user.id, browser_id, safe_next(next_path))


async def complete_reauth(ctx: Context, identity: UpstreamIdentity, info: SessionInfo,
                          previous_cookie: str | None, browser_id: str, next_path: str
                          ) -> str | None:
    """The fresh session's cookie when the identity is an active one of this account, None
    when it is not (SecondFactorRequired when the account has a second factor). The upstream
    has already shown it authenticated the customer during this round trip (`auth_time`,
    checked by the client in `handle_callback`)."""
    async with ctx.db.transaction() as session:
        linked = await store.find_identity(session, identity.namespace, identity.subject)
        if linked is None or linked.user_id != info.user_id or linked.status != "active":
            return None
        linked.last_login_at = ctx.now()
        waiting = await _wait(ctx, session, info.user_id, browser_id, ["fed"], next_path,
                              identity_id=linked.id)
        if not waiting:
            cookie, _ = await start_session(ctx, session, info.user_id, previous_cookie,
                                            amr=["fed"], identity_id=linked.id)
    if waiting:
        raise SecondFactorRequired(SECOND_FACTOR_LOCATION)
    return cookie
