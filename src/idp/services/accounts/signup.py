"""Registration with a verified address, without telling a taken address apart (issue 12
item 2; security.md ATO: account pre-hijacking).

- The register page asks for the address only. The request does the same work whatever the
  address: it counts the attempt and puts the sealed address, with the authorization request
  it came from, in the outbox; the answer is "check your inbox" either way.
- The dispatcher (SignupRequestSender) then looks the address up. A new address gets a link
  to choose a password; an address with an account gets a message saying so, with a link to
  sign in to the same app and one to reset the password. Neither the page nor its timing
  tells the two apart, and nobody can make an account for an address they cannot read.
- A link is 256 random bits, stored as a digest, good for IDP_SIGNUP_TTL, once. Using it in
  any browser takes up the authorization request again there, so the customer lands in the
  app: the account is made (its address verified), signed in, and asked for consent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from idp.crypto.handles import digest, new_handle, new_public_id
from idp.domain import AuthorizationRequest
from idp.locales import current_locale
from idp.notifications.mail import enqueue_mail, sealer
from idp.notifications.outbox import enqueue
from idp.notifications.senders import Outcome
from idp.services.context import Context
from idp.services.signin import security_events, throttle
from idp.services.signin.authorization import (
    Outcome as Next,
)
from idp.services.signin.authorization import continue_request
from idp.services.signin.credential_rules import email_problem, password_problem
from idp.services.signin.interaction import (
    LoginFailed,
    SignedIn,
    start_session,
)
from idp.services.signin.pending import load_interaction
from idp.store import clients as client_store
from idp.store import users as user_store
from idp.store.models import OutboxMessage, User

SIGNUP = "signup"  # token: choose a password for a new account
SIGNUP_SIGNIN = "signup_signin"  # token: the address has an account; sign in to the app
SIGNUP_REQUEST = "signup_request"  # outbox kind


class LinkInvalid(Exception):
    """The link is unknown, used or expired."""


class AddressTaken(Exception):
    """An account got the address between the mail and the link's use."""


def continue_link(ctx: Context, token: str) -> str:
    # In the query, which the access log never writes.
    return f"{ctx.settings.issuer}/signup?{urlencode({'token': token})}"


async def request_signup(ctx: Context, interaction_id: str, browser_id: str, email: str
                         ) -> None:
    """Ask for a registration link for `email`, from the register page of an authorization
    request. LoginFailed for an address that cannot be one (the same for every address);
    Throttled past the limits."""
    email = email.strip()
    problem = email_problem(email)
    if problem:
        raise LoginFailed(problem)
    await throttle.count_signup_request(ctx, email)
    async with ctx.db.transaction() as session:
        interaction, client = await load_interaction(ctx, session, interaction_id, browser_id)
        enqueue(session, SIGNUP_REQUEST, None, "signup", {"sealed": sealer(ctx.settings).encrypt({
            "email": email, "request": interaction.request, "client_id": client.client_id,
            "client_name": client.name}), "locale": current_locale()}, ctx.now())
    ctx.notify_outbox()


@dataclass(frozen=True)
class SignupRequestSender:
    """Carries out a registration request from the outbox: a link to finish registering for
    a new address, a link to sign in (and one to reset the password) for a known one."""

    ctx: Context

    async def send(self, message: OutboxMessage) -> Outcome:
        sealed = message.payload.get("sealed")
        if not isinstance(sealed, str):
            return Outcome(False, False, None, "the request has no address")
        data = sealer(self.ctx.settings).decrypt(sealed)
        ctx, now = self.ctx, self.ctx.now()
        email = user_store.normalize_email(str(data["email"]))
        token = new_handle()
        detail = {"email": email, "request": data["request"], "client_id": data["client_id"]}
        context = {"link": continue_link(ctx, token), "brand": ctx.settings.controller_name,
                   "app": data["client_name"], "minutes": ctx.settings.signup_ttl // 60,
                   "reset_link": f"{ctx.settings.issuer}/account/forgot"}
        async with ctx.db.transaction() as session:
            user = await user_store.find_by_email(session, email)
            purpose = SIGNUP if user is None else SIGNUP_SIGNIN
            user_store.add_unowned_token(session, digest(token), purpose, now,
                                         now + ctx.settings.signup_ttl, detail)
            # In the language of the page the customer asked on (issue 15 item 1).
            enqueue_mail(session, ctx.settings, email,
                         "signup" if user is None else "signup_existing", context, now,
                         locale=message.payload.get("locale"))
            if user is not None:
                security_events.record(session, "registration_attempted", user.id, now)
        ctx.notify_outbox()
        return Outcome(True, False, None, None)

    def finished_payload(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        return {}  # the address is of no further use


@dataclass(frozen=True)
class Link:
    """What a live link is for: choosing a password (`email` shown), or signing in."""

    purpose: str
    email: str


async def read_link(ctx: Context, token: str) -> Link:
    if not 0 < len(token) <= 128:
        raise LinkInvalid()
    async with ctx.db.transaction(read_only=True) as session:
        for purpose in (SIGNUP, SIGNUP_SIGNIN):
            detail = await user_store.unowned_token(session, digest(token), purpose, ctx.now())
            if detail is not None:
                return Link(purpose, str(detail["email"]))
    raise LinkInvalid()


async def sign_in_from_link(ctx: Context, token: str, browser_id: str,
                            session_cookie: str | None) -> Next:
    """The address has an account: the app's authorization request starts again in this
    browser, at the login page with the address filled in. The link is used up."""
    if not 0 < len(token) <= 128:
        raise LinkInvalid()
    async with ctx.db.transaction() as session:
        detail = await user_store.take_unowned_token(session, digest(token), SIGNUP_SIGNIN,
                                                     ctx.now())
        if detail is None:
            raise LinkInvalid()
        client = await client_store.get_client(session, str(detail["client_id"]))
        if client is None:
            raise LinkInvalid()
        request = replace(AuthorizationRequest.from_json(detail["request"]),
                          login_hint=str(detail["email"]))
        return await continue_request(ctx, session, client, request, browser_id,
                                      session_cookie)


async def complete_signup(ctx: Context, token: str, password: str, browser_id: str,
                          previous_cookie: str | None) -> SignedIn:
    """Make the account with a live link and the chosen password: its address is verified
    (the link reached the mailbox), it is signed in here, and the app's authorization request
    goes on (consent, then back to the app). LoginFailed for a password the rules refuse
    (the link stays usable), LinkInvalid, AddressTaken."""
    link = await read_link(ctx, token)
    if link.purpose != SIGNUP:
        raise LinkInvalid()
    problem = password_problem(ctx, password, link.email)
    if problem:
        raise LoginFailed(problem)
    # Hashed before the unit of work: argon2 runs off the event loop, and on SQLite the write
    # lock is not held through it.
    password_hash = await ctx.passwords.hash(password)
    now = ctx.now()
    try:
        async with ctx.db.transaction() as session:
            detail = await user_store.take_unowned_token(session, digest(token), SIGNUP, now)
            if detail is None:
                raise LinkInvalid()
            user = User(id=new_public_id(), email=str(detail["email"]), email_verified=True,
                        password_hash=password_hash, profile={}, created_at=now,
                        updated_at=now)
            session.add(user)
            await session.flush()
            security_events.record(session, "registered", user.id, now)
            cookie, _ = await start_session(ctx, session, user.id, previous_cookie)
            await session.flush()  # the next step reads the session with a Core statement
            client = await client_store.get_client(session, str(detail["client_id"]))
            outcome: Next | None = None
            if client is not None:
                outcome = await continue_request(
                    ctx, session, client, AuthorizationRequest.from_json(detail["request"]),
                    browser_id, cookie)
        return SignedIn(cookie, outcome)
    except IntegrityError:
        raise AddressTaken() from None
