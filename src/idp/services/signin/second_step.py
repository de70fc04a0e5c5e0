"""Where a sign-in continues once its second factor is given (issue 12 item 6): the
interaction (the code or the next page is chosen in the same unit of work as the session),
the account center's sign-in, and a re-authentication. Each takes the pending first factor of
this browser at its place, counts the code, and then checks and uses it up, ends the wait and
starts the session together."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.domain import SessionInfo
from idp.services.context import Context
from idp.services.signin import throttle
from idp.services.signin.authorization import resume_in
from idp.services.signin.interaction import SignedIn, start_session
from idp.services.signin.passkeys import (
    CounterRegressed,
    PasskeyRefused,
    authentication_options,
    challenge_key,
    consume_challenge,
    parse_credential,
    record_regression,
    verify_assertion,
)
from idp.services.signin.pending import load_interaction
from idp.services.signin.reauth import PENDING_SECONDS, safe_next
from idp.services.signin.second_factor import (
    ACCOUNT,
    REAUTH,
    CodeRefused,
    SecondFactorRequired,
    combined_amr,
    count_code,
    interaction_place,
    pending_sign_in,
    take_pending,
    verify_code,
    wait_for_second_factor,
)
from idp.services.signin.upstream_login import link_and_start_session
from idp.store import factors as factor_store
from idp.store import passkeys as passkey_store
from idp.store import users as user_store
from idp.store.models import PendingSignIn

ACCOUNT_LOCATION = "/account/login/otp"


@dataclass(frozen=True)
class SecondFactor:
    """What the second-factor page posted: a code, or a passkey's assertion (JSON)."""

    code: str = ""
    credential: str = ""


@asynccontextmanager
async def _refusals(ctx: Context) -> AsyncIterator[None]:
    """A refused passkey in the page's words; a counter that went backwards is recorded
    once the unit of work it was found in has rolled back."""
    try:
        yield
    except CounterRegressed as refused:
        await record_regression(ctx, refused)
        raise CodeRefused(refused.message) from None
    except PasskeyRefused as refused:
        raise CodeRefused(refused.message) from None


async def _challenge(ctx: Context, pending: PendingSignIn, place: str, browser_id: str,
                     given: SecondFactor) -> bytes | None:
    """A passkey answer's challenge, used up before the answer is checked."""
    if not given.credential:
        return None
    async with _refusals(ctx):
        return await consume_challenge(ctx, challenge_key(browser_id, place), pending.user_id)


async def _verify(ctx: Context, session: AsyncSession, pending: PendingSignIn,
                  challenge: bytes | None, given: SecondFactor, attempt: throttle.Attempt
                  ) -> tuple[str, ...]:
    """What the second factor adds to `amr`: a code's, or the passkey's methods and "mfa"
    (a key the customer holds on top of the first factor, RFC 8176 §2), whether or not the
    authenticator verified the user. Counted like a code either way (ATO-03)."""
    if challenge is None:
        return await verify_code(ctx, session, pending.user_id, given.code, attempt)
    asserted = await verify_assertion(ctx, session, challenge,
                                      parse_credential(given.credential), pending.user_id)
    await throttle.code_succeeded(session, attempt)
    return (*asserted.amr[:2], "mfa")


async def complete_in_interaction(ctx: Context, interaction_id: str, browser_id: str,
                                  given: SecondFactor, previous_cookie: str | None
                                  ) -> SignedIn | None:
    """Sign in with the code and continue the authorization; None when nothing waits for a
    second factor here (the login page then asks for the first again). CodeRefused,
    Throttled."""
    pending = await pending_sign_in(ctx, browser_id, interaction_place(interaction_id))
    if pending is None:
        return None
    attempt = await count_code(ctx, pending.user_id)
    challenge = await _challenge(ctx, pending, interaction_place(interaction_id), browser_id,
                                 given)
    async with _refusals(ctx), ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        added = await _verify(ctx, session, pending, challenge, given, attempt)
        await take_pending(ctx, session, pending)
        await _check_active(session, pending.user_id)
        if pending.link_hash is not None:
            # The upstream identity waiting to be linked: the account has now fully proved
            # itself (federation.md §9 requirement 25).
            cookie, _ = await link_and_start_session(
                ctx, session, interaction, pending.user_id, pending.link_hash, browser_id,
                previous_cookie, combined_amr(pending.amr, added))
        else:
            cookie, sid = await start_session(ctx, session, pending.user_id, previous_cookie,
                                              amr=combined_amr(pending.amr, added),
                                              identity_id=pending.identity_id)
            interaction.session_sid = sid
        await session.flush()
        outcome = await resume_in(ctx, session, interaction, client, browser_id, cookie)
    ctx.notify_outbox()
    return SignedIn(cookie, outcome)


async def sign_in_to_account(ctx: Context, user_id: str, browser_id: str,
                             previous_cookie: str | None, has_second_factor: bool) -> str:
    """After a right password at /account/login: the new session's cookie, or
    SecondFactorRequired when the account has a second factor (read with the account)."""
    async with ctx.db.transaction() as session:
        waiting = has_second_factor
        if waiting:
            await wait_for_second_factor(ctx, session, user_id, browser_id, ACCOUNT, ["pwd"],
                                         expires_at=ctx.now() + PENDING_SECONDS)
        else:
            cookie, _ = await start_session(ctx, session, user_id, previous_cookie)
    if waiting:
        raise SecondFactorRequired(ACCOUNT_LOCATION)
    return cookie


async def complete_account_sign_in(ctx: Context, browser_id: str, given: SecondFactor,
                                   previous_cookie: str | None) -> str | None:
    """The account center's session after the code; None when nothing waits here."""
    pending = await pending_sign_in(ctx, browser_id, ACCOUNT)
    if pending is None:
        return None
    attempt = await count_code(ctx, pending.user_id)
    challenge = await _challenge(ctx, pending, ACCOUNT, browser_id, given)
    async with _refusals(ctx), ctx.db.transaction() as session:
        added = await _verify(ctx, session, pending, challenge, given, attempt)
        await take_pending(ctx, session, pending)
        await _check_active(session, pending.user_id)
        cookie, _ = await start_session(ctx, session, pending.user_id, previous_cookie,
                                        amr=combined_amr(pending.amr, added),
                                        identity_id=pending.identity_id)
    return cookie


@dataclass(frozen=True)
class Reauthenticated:
    cookie: str
    next_path: str


async def complete_reauthentication(ctx: Context, info: SessionInfo, browser_id: str,
                                    given: SecondFactor, previous_cookie: str | None
                                    ) -> Reauthenticated | None:
    """A fresh session of the signed-in account after the code; None when nothing of this
    account waits here."""
    pending = await pending_sign_in(ctx, browser_id, REAUTH)
    if pending is None or not hmac.compare_digest(pending.user_id, info.user_id):
        return None
    attempt = await count_code(ctx, pending.user_id)
    challenge = await _challenge(ctx, pending, REAUTH, browser_id, given)
    async with _refusals(ctx), ctx.db.transaction() as session:
        added = await _verify(ctx, session, pending, challenge, given, attempt)
        await take_pending(ctx, session, pending)
        cookie, _ = await start_session(ctx, session, pending.user_id, previous_cookie,
                                        amr=combined_amr(pending.amr, added),
                                        identity_id=pending.identity_id)
    return Reauthenticated(cookie, safe_next(pending.next_path))


@dataclass(frozen=True)
class Offer:
    totp: bool
    passkey_options: str | None  # PublicKeyCredentialRequestOptions (JSON), or None


async def second_factor_offer(ctx: Context, browser_id: str, place: str) -> Offer:
    """The second factors the page offers for what waits here: the app's code when the
    account has one; its passkeys (with a fresh challenge for this browser and place) unless
    the first factor was a passkey already."""
    pending = await pending_sign_in(ctx, browser_id, place)
    if pending is None:
        return Offer(True, None)
    async with ctx.db.transaction() as session:
        totp = await factor_store.has_totp(session, pending.user_id)
        options = None
        if not {"hwk", "swk"} & set(pending.amr) and await passkey_store.has_passkey(
                session, pending.user_id):
            options = await authentication_options(
                ctx, session, challenge_key(browser_id, place), pending.user_id)
    return Offer(totp or options is None, options)


async def _check_active(session: AsyncSession, user_id: str) -> None:
    """An account deactivated while the code was being fetched signs in no more."""
    user = await user_store.get_user(session, user_id)
    if user is None or user.disabled_at is not None:
        raise errors.LoginRequired("This account can no longer sign in.", redirectable=False)


async def interaction_client_name(ctx: Context, interaction_id: str, browser_id: str) -> str:
    """The app an interaction signs in to, for the second-factor page; the stale-request
    error when the interaction is gone or another browser's."""
    async with ctx.db.transaction() as session:
        _, client = await load_interaction(ctx, session, interaction_id, browser_id)
    return client.name
