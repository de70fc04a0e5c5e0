"""Password authentication shared by every sign-in page: the same answer, and the same work,
whether the account exists or not (security.md §0 item 12).

A check is three steps, so that a caller can fold the first and the last into units of work
of its own (the authorization's login page settles the check, starts the session and issues
the code in one): `begin_password_check` counts the attempt and finds the account, and its
unit of work commits before the hash work; `verify_password` runs argon2 with no transaction
open (on SQLite one would hold the write lock through the hash), so parallel guesses all
count; `settle` clears the counters of a right password and stores an upgraded hash.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, String, bindparam, cast, insert, select

from idp.crypto.handles import digest
from idp.errors import Throttled
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin import security_events, throttle
from idp.services.signin.session_devices import SIGN_IN_FAILED, request_device
from idp.store import interactions as interaction_store
from idp.store import users as user_store
from idp.store.models import SecurityEvent, User
from idp.store.prepared import Connection, Prepared


@dataclass(frozen=True)
class PasswordCheck:
    """A counted attempt and the account its address names (None when there is none, or the
    form was not worth a lookup)."""

    attempt: throttle.Attempt
    user: User | None
    well_formed: bool
    second_factor: bool = False  # the account has one (read with it)


@dataclass(frozen=True)
class Proof:
    """A right password for an active account: `user` is detached and read-only."""

    user: User
    attempt: throttle.Attempt
    new_hash: str | None  # the password under today's parameters, when the stored hash is older
    second_factor: bool = False  # asked for next (an authenticator app or a passkey)


def password_check_unit(ctx: Context, email: str
                        ) -> AbstractAsyncContextManager[Connection]:
    """The unit of work for `begin_password_check`. A browser the account knows is counted
    on its own key alone, by one statement that also sets the key's hold: it needs no
    transaction, and goes without one (its BEGIN and COMMIT were two of the sign-in's round
    trips). Otherwise the account's and the network's counts are one transaction, so an
    attempt the network's hold refuses is not counted against the account either."""
    if throttle.counted_alone(ctx, email):
        return ctx.db.statements()
    return ctx.db.atomic()


async def begin_password_check(ctx: Context, connection: Connection, email: str,
                               password: str) -> PasswordCheck:
    """Count the attempt (security.md ATO-01..03: before the hash work) in the caller's unit of
    work, which must commit before `verify_password`; Throttled while held back."""
    attempt = await _count_attempt(ctx, connection, email)
    found = await user_store.account_by_email(connection, email) \
        if _well_formed(ctx, email, password) else None
    return _checking(ctx, attempt, email, password, found)


async def begin_password_check_at(ctx: Context, connection: Connection, interaction_id: str,
                                  browser_id: str, email: str, password: str
                                  ) -> tuple[str, PasswordCheck] | None:
    """`begin_password_check` for the login page's post: its interaction must still be open
    for this browser, or nothing is counted (None). The interaction's client and the account
    are read together, in one statement, before the attempt is counted; the client's id is
    answered with the check."""
    client_id, found = await interaction_store.pending_client_and_account(
        connection, interaction_id, digest(browser_id), ctx.now(), email)
    if client_id is None:
        return None
    attempt = await _count_attempt(ctx, connection, email)
    return client_id, _checking(ctx, attempt, email, password, found)


def _well_formed(ctx: Context, email: str, password: str) -> bool:
    return bool(email and password) and len(password) <= ctx.settings.password_max_length


async def _count_attempt(ctx: Context, connection: Connection, email: str) -> throttle.Attempt:
    try:
        return await throttle.begin_attempt(ctx, connection, email)
    except Throttled:
        metrics.SIGNINS.labels("password", "throttled").inc()
        raise


def _checking(ctx: Context, attempt: throttle.Attempt, email: str, password: str,
              found: tuple[User, bool] | None) -> PasswordCheck:
    """The check of a counted attempt; the account is not looked at for a form not worth a
    lookup (its hash work is then spent on nothing)."""
    well_formed = _well_formed(ctx, email, password)
    if found is None or not well_formed:
        return PasswordCheck(attempt, None, well_formed)
    return PasswordCheck(attempt, found[0], well_formed, second_factor=found[1])


async def verify_password(ctx: Context, check: PasswordCheck, password: str) -> Proof | None:
    """The hash work, always the same amount; the proof when the password is right."""
    if not check.well_formed:
        # Still burn one hash so an empty or oversized field answers at the usual speed.
        await ctx.passwords.verify(None, password[:ctx.settings.password_max_length])
        metrics.SIGNINS.labels("password", "failure").inc()
        await record_failure(ctx, None)
        return None
    user = check.user
    result = await ctx.passwords.verify(user.password_hash if user else None, password)
    # A deactivated account (federation.md §9 requirement 27) answers exactly like a wrong
    # password, after the same hash work, so the answer tells nothing about the account.
    if user is None or not result.ok or user.disabled_at is not None:
        metrics.SIGNINS.labels("password", "failure").inc()
        await record_failure(ctx, user.id if user is not None else None)
        return None
    metrics.SIGNINS.labels("password", "success").inc()
    return Proof(user, check.attempt, result.new_hash, second_factor=check.second_factor)


async def record_failure(ctx: Context, user_id: str | None) -> None:
    """A failed password for an account that exists goes in its security timeline (issue 12
    item 8). After the hash, never before it (the first unit of work stays as small as it
    is), and the same short unit of work after every failure, for an unknown address too,
    so the work does not tell whether the account exists (ATO-05).
    Throttled attempts never get here: they are not sign-in attempts the account saw."""
    device, network = request_device()
    async with ctx.db.atomic() as connection:
        # One statement either way: the row is copied from the account's, so for an unknown
        # address the same INSERT ... SELECT finds nothing to insert.
        await _RECORD_FAILURE.run(connection, {
            "b_id": security_events.event_id(), "b_kind": SIGN_IN_FAILED, "b_now": ctx.now(),
            "b_detail": {"device": device, "network": network, "method": "password"},
            "b_user_id": user_id or ""})


_RECORD_FAILURE = Prepared(insert(SecurityEvent).from_select(
    ["id", "user_id", "kind", "detail", "created_at"],
    select(cast(bindparam("b_id"), String), User.id, cast(bindparam("b_kind"), String),
           bindparam("b_detail", type_=JSON), cast(bindparam("b_now"), BigInteger))
    .where(User.id == bindparam("b_user_id"))))


async def settle(ctx: Context, connection: Connection, proof: Proof) -> None:
    """In the caller's unit of work: the account's counters start afresh and an outdated hash
    is replaced."""
    await throttle.succeeded(ctx, connection, proof.attempt)
    if proof.new_hash:
        await user_store.set_password_hash(connection, proof.user.id, proof.new_hash, ctx.now())


async def verify_password_login(ctx: Context, email: str, password: str) -> Proof | None:
    """The proof (its account detached and read-only, and whether a second factor follows),
    if `password` is the account's; None otherwise, after the same work."""
    async with password_check_unit(ctx, email) as connection:
        check = await begin_password_check(ctx, connection, email, password)
    proof = await verify_password(ctx, check, password)
    if proof is None:
        return None
    async with ctx.db.atomic() as connection:
        await settle(ctx, connection, proof)
    return proof
