"""Sign-in methods in the account center: list, connect and remove upstream identities
(federation.md §4, §9 requirements 15, 24, 25).

Connecting is an upstream round trip like a login, but its state (purpose "acctlink") is bound
to the browser *and* to the signed-in account, and completes only when the callback arrives in
that browser with a session of that account (requirement 25). Re-authentication with a
provider (services.reauth) is the same round trip with purpose "reauth". Both come back
through the upstream's one callback path (requirement 2), which claims the state once and
hands these two to `finish_round_trip`.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import errors
from idp.domain import SessionInfo
from idp.federation.callback import AuthorizationDenied
from idp.federation.errors import FederationError
from idp.federation.identity import UpstreamIdentity
from idp.locales import N_, gettext
from idp.services.accounts import center
from idp.services.accounts.upstream_withdrawal import end_logins, erase_imported
from idp.services.context import Context
from idp.services.signin import change_notice, security_events, sessions
from idp.services.signin.interaction import start_session
from idp.services.signin.reauth import OUTCOMES as REAUTH_OUTCOMES
from idp.services.signin.reauth import complete_reauth, reauth_location, safe_next
from idp.services.signin.second_factor import SecondFactorRequired
from idp.services.signin.upstream_login import link_identity
from idp.services.upstream.identities import DEAD, REVOKED, has_way_in
from idp.services.upstream.providers import (
    display_name,
    enabled_upstreams,
    name_of,
    upstream_client,
)
from idp.services.upstream.revocation_sender import enqueue_upstream_revocations
from idp.services.upstream.state import (
    ACCOUNT_LINK,
    REAUTH,
    open_transaction,
    same_browser,
    start_round_trip,
)
from idp.store import federation as store
from idp.store.models import FederationState, Identity, User

log = logging.getLogger("idp.federation")
# Identity ids and upstream aliases are short URL-safe tokens; anything else (a NUL byte, which
# PostgreSQL refuses) is answered before it reaches the database.
ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Catalog texts (idp.locales), translated where shown.
STATUS_WORDS = {"active": N_("Active"), REVOKED: N_("Access withdrawn at the provider"),
                "suspended": N_("Suspended by the provider"), DEAD: N_("Deleted at the provider")}
# What the account center says after a round trip or a removal; %(name)s is the provider's.
OUTCOMES = {
    "linked": N_("Your %(name)s account is connected. You were signed out everywhere else."),
    "already": N_("This %(name)s account is already connected to your account."),
    "taken": N_("This %(name)s account is already connected to another account."),
    "cancelled": N_("Connecting with %(name)s was cancelled. Nothing changed."),
    "failed": N_("Connecting with %(name)s did not work. Nothing changed; try again."),
    "removed": N_("%(name)s is removed from your sign-in methods. You were signed out "
                  "everywhere else."),
    "last": N_("%(name)s is your only way to sign in, so it cannot be removed."),
    **REAUTH_OUTCOMES,
}
# Where a connect round trip comes back to: the account center's sign-in methods.
SIGN_IN_METHODS = "/account/security"
NOT_BOUND = N_("This request expired, was already used, or began in another browser or for "
               "another account. Nothing was changed. Return to your account and try again.")


@dataclass(frozen=True)
class LinkedMethod:
    identity_id: str
    alias: str
    name: str
    email: str | None
    linked_at: int
    status: str


@dataclass(frozen=True)
class SignInMethods:
    has_password: bool
    identities: list[LinkedMethod]
    connectable: list[dict[str, str]]  # enabled upstreams not linked yet: alias, name

    def reauth_upstreams(self) -> list[LinkedMethod]:
        """One per provider, among the linked identities that can sign in."""
        seen: dict[str, LinkedMethod] = {}
        for method in self.identities:
            if method.status == "active":
                seen.setdefault(method.alias, method)
        return list(seen.values())


@dataclass(frozen=True)
class RoundTrip:
    """Where the browser goes after an account-center callback, with its new session."""

    location: str
    session_cookie: str | None = None


def outcome_location(base: str, outcome: str, alias: str) -> str:
    query = urlencode({"outcome": outcome, "upstream": alias})
    return f"{base}{'&' if '?' in base else '?'}{query}"


async def outcome_message(ctx: Context, outcome: str | None, alias: str | None) -> str | None:
    if outcome not in OUTCOMES or not alias:
        return None
    return gettext(OUTCOMES[outcome], name=await provider_name(ctx, alias))


async def provider_name(ctx: Context, alias: str) -> str:
    async with ctx.db.transaction() as session:
        row = await store.get_upstream(session, alias)
    return display_name(row) if row is not None else gettext("the provider")


async def sign_in_methods(ctx: Context, user: User) -> SignInMethods:
    async with ctx.db.transaction() as session:
        rows = await store.identities_of_user(session, user.id)
        names = {alias: await name_of(session, alias) for alias in {row.alias for row in rows}}
    linked = {row.alias for row in rows}
    return SignInMethods(
        has_password=user.password_hash is not None,
        identities=[LinkedMethod(row.id, row.alias, names[row.alias], row.email,
                                 row.created_at, row.status) for row in rows],
        connectable=[u for u in await enabled_upstreams(ctx) if u["alias"] not in linked])


# -- The round trip -----------------------------------------------------------------------


async def start_link(ctx: Context, alias: str, user_id: str, browser_id: str) -> str:
    """The upstream authorization URL that connects `alias` to this account."""
    return await start_round_trip(ctx, ACCOUNT_LINK, alias, user_id, browser_id, SIGN_IN_METHODS)


async def finish_round_trip(ctx: Context, row: FederationState, alias: str,
                            params: list[tuple[str, str]], browser_id: str | None,
                            session_cookie: str | None) -> RoundTrip:
    """Complete a connect or re-authentication round trip whose state the callback has
    claimed."""
    # All before any token request: the right upstream (requirement 2), this browser and this
    # account (requirement 25).
    info = await _bound_session(ctx, row, alias, browser_id, session_cookie)
    client = await upstream_client(ctx, alias)
    if client is None:
        raise errors.InvalidRequest(N_("This sign-in provider is not available"),
                                    redirectable=False)
    transaction, carried = open_transaction(ctx, row)
    next_path = safe_next(carried)
    back = SIGN_IN_METHODS if row.purpose == ACCOUNT_LINK else reauth_location(next_path)
    try:
        result = await client.handle_callback(params, transaction)
    except FederationError:  # requirements 7, 13; also an upstream that did not ask again
        return RoundTrip(outcome_location(back, _worded("failed", row.purpose), alias))
    if isinstance(result, AuthorizationDenied):
        return RoundTrip(outcome_location(back, _worded("cancelled", row.purpose), alias))
    if row.purpose == ACCOUNT_LINK:
        return RoundTrip(outcome_location(back, await _complete_link(ctx, result, info), alias))
    assert browser_id is not None  # _bound_session checked it
    try:
        cookie = await complete_reauth(ctx, result, info, session_cookie, browser_id,
                                       next_path)
    except SecondFactorRequired as needed:
        return RoundTrip(needed.location)
    if cookie is None:
        return RoundTrip(outcome_location(back, "mismatch", result.alias))
    return RoundTrip(next_path, cookie)


def _worded(outcome: str, purpose: str) -> str:
    return f"reauth_{outcome}" if purpose == REAUTH else outcome


async def _bound_session(ctx: Context, row: FederationState, alias: str,
                         browser_id: str | None, session_cookie: str | None) -> SessionInfo:
    """Requirement 25: the callback is for this upstream, arrives in the browser that began
    it, and carries a live session of the account it was begun for."""
    if row.alias != alias or browser_id is None or not same_browser(row, browser_id):
        raise errors.InvalidRequest(NOT_BOUND, redirectable=False)
    try:
        _, info = await center.current_user(ctx, session_cookie)
    except errors.LoginRequired:
        info = None
    if info is None or row.user_id is None or not hmac.compare_digest(info.user_id,
                                                                       row.user_id):
        log.warning("account-center callback refused: session of another account or none")
        raise errors.InvalidRequest(NOT_BOUND, redirectable=False)
    return info


async def _complete_link(ctx: Context, identity: UpstreamIdentity, info: SessionInfo) -> str:
    """Link the identity to the account; returns the outcome to show."""
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            existing = await store.find_identity(session, identity.namespace,
                                                 identity.subject)
            if existing is not None:
                # Requirement 15: an identity belongs to at most one account.
                return "already" if existing.user_id == info.user_id else "taken"
            await link_identity(ctx, session, info.user_id, identity, now, via="account center")
            await session.flush()
            # Requirement 24 (unexpired-session defence): every other session and refresh
            # token of the account goes. It also cancels pending email changes: there is no
            # email change or password reset to be pending.
            await sessions.end_sessions_of_user(ctx, session, info.user_id, keep_sid=info.sid)
    except IntegrityError:
        return "taken"  # the unique key caught a concurrent link to another account
    ctx.notify_outbox()
    log.info("upstream identity linked from the account center")
    return "linked"


# -- Removal ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    outcome: str
    alias: str
    session_cookie: str | None = None  # this browser's new session, when its own one ended


async def remove_identity(ctx: Context, info: SessionInfo, identity_id: str) -> Removal:
    """Unlink one identity of the account, unless it is the last way to sign in."""
    now = ctx.now()
    if not ID_SHAPE.fullmatch(identity_id):
        raise errors.InvalidRequest(N_("No such sign-in method on your account"),
                                    redirectable=False)
    async with ctx.db.transaction() as session:
        # The account row is locked first, so two removals from two browsers cannot each see
        # the other's identity and together leave no way in (PostgreSQL READ COMMITTED).
        await session.scalar(select(User.id).where(User.id == info.user_id).with_for_update())
        identity = await session.get(Identity, identity_id)
        if identity is None or identity.user_id != info.user_id:
            raise errors.InvalidRequest(N_("No such sign-in method on your account"),
                                        redirectable=False)
        user = await session.get(User, identity.user_id)
        if user is None or not await has_way_in(session, user, besides=identity.id):
            return Removal("last", identity.alias)
        alias = identity.alias
        # Whoever signed in with it is signed out, apps told (back-channel logout).
        ended = await end_logins(ctx, session, identity)
        # PRIV-08: what it imported goes with it, and the upstream is asked to forget us.
        await erase_imported(session, identity)
        await enqueue_upstream_revocations(session, [identity], now)
        await session.delete(identity)
        security_events.record(session, security_events.IDENTITY_UNLINKED, info.user_id, now,
                               alias=alias)
        await change_notice.notify(ctx, session, info.user_id, now,
                                   security_events.IDENTITY_UNLINKED, provider=alias)
        # Requirement 24, as for a link.
        await sessions.end_sessions_of_user(ctx, session, info.user_id, keep_sid=info.sid)
        cookie = None
        if info.sid in ended:
            # This browser signed in with the identity it just removed: its session ended
            # with the others; the customer, who just proved who they are, continues here.
            cookie, _ = await start_session(ctx, session, info.user_id, None, amr=list(info.amr))
    ctx.notify_outbox()
    return Removal("removed", alias, cookie)


