"""Signing in with an upstream provider inside a brand app's pending authorization.

start → the provider (state, nonce, PKCE bound to this browser and interaction) → callback
(state used once, same browser, RFC 9207 and ID token checks in the client) → resolve the
account (log in, create, link, or ask to prove the existing account first) → back into the
interaction. The brand app only ever sees our tokens and our `sub`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from idp import errors
from idp.crypto.handles import digest, new_handle, new_public_id
from idp.federation.authority import may_auto_link
from idp.federation.callback import AuthorizationDenied
from idp.federation.config import LinkingPolicy, SyncMode
from idp.federation.errors import FederationError
from idp.federation.identity import MappedClaim, UpstreamIdentity
from idp.locales import N_, gettext
from idp.observability import metrics
from idp.services.context import Context
from idp.services.signin import change_notice, second_factor, security_events
from idp.services.signin.authentication import verify_password_login
from idp.services.signin.interaction import LoginFailed, SignedIn, start_session
from idp.services.signin.pending import load_interaction
from idp.services.signin.sessions import end_sessions_of_user
from idp.services.upstream import profile_import
from idp.services.upstream import tokens as upstream_tokens
from idp.services.upstream.identities import REVOKED
from idp.services.upstream.providers import upstream_client
from idp.services.upstream.state import (
    EXPIRED,
    LINK,
    LOGIN,
    STATE_TTL,
    callback_uri,
    open_transaction,
    same_browser,
    save_state,
    state_encryptor,
)
from idp.store import federation as store
from idp.store import users as user_store
from idp.store.models import FederationState, Identity, Interaction, User

log = logging.getLogger("idp.federation")
@dataclass(frozen=True)
class FederatedLogin:
    interaction_id: str
    session_cookie: str | None = None  # set when the customer is signed in
    message: str | None = None  # for the login page: cancelled, refused, or link needed
    link_handle: str | None = None  # proves the existing account to link the identity


async def start_login(ctx: Context, alias: str, interaction_id: str, browser_id: str) -> str:
    client = await upstream_client(ctx, alias)
    if client is None:
        raise errors.InvalidRequest(N_("This sign-in provider is not available"),
                                    redirectable=False)
    async with ctx.db.transaction() as session:
        await load_interaction(ctx, session, interaction_id, browser_id)
    start = await client.start(callback_uri(ctx, alias))
    await save_state(ctx, start.transaction, LOGIN, alias, browser_id,
                     interaction_id=interaction_id)
    return start.url


async def finish_login(ctx: Context, row: FederationState, alias: str,
                       params: list[tuple[str, str]], browser_id: str | None,
                       previous_cookie: str | None) -> FederatedLogin:
    """Complete a sign-in whose state (purpose "login") the callback has claimed."""
    # Requirement 2: a state of another upstream's transaction is refused before any token
    # request; requirement 4: so is one that began in another browser (login CSRF).
    if row.alias != alias or row.interaction_id is None or (
        browser_id is None or not same_browser(row, browser_id)
    ):
        raise errors.InvalidRequest(EXPIRED, redirectable=False)
    client = await upstream_client(ctx, alias)
    if client is None:
        raise errors.InvalidRequest(N_("This sign-in provider is not available"),
                                    redirectable=False)
    transaction, _ = open_transaction(ctx, row)
    name = alias.capitalize()
    try:
        result = await client.handle_callback(params, transaction)
    except FederationError:
        # Requirement 7 and 13: nothing is created; the reason is logged without secrets.
        metrics.SIGNINS.labels(alias, "failure").inc()
        return FederatedLogin(row.interaction_id,
                              message=gettext("Signing in with %(provider)s did not work. "
                                              "Try again.", provider=name))
    if isinstance(result, AuthorizationDenied):
        metrics.SIGNINS.labels(alias, "cancelled").inc()
        return FederatedLogin(row.interaction_id,
                              message=gettext("Signing in with %(provider)s was cancelled.",
                                              provider=name))
    login = await resolve_account(ctx, result, client.config.linking_policy,
                                  row.interaction_id, browser_id, previous_cookie)
    metrics.SIGNINS.labels(alias, "success" if login.session_cookie else "failure").inc()
    return login


async def resolve_account(ctx: Context, identity: UpstreamIdentity, policy: LinkingPolicy,
                          interaction_id: str, browser_id: str, previous_cookie: str | None
                          ) -> FederatedLogin:
    """Log in, create an account, link, or ask the customer to prove the existing account
    (federation.md §4 and §9 requirements 14-23)."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        interaction, _ = await load_interaction(ctx, session, interaction_id, browser_id)
        linked = await store.find_identity(session, identity.namespace, identity.subject)
        if linked is not None:
            if linked.status == REVOKED:
                # The customer withdrew consent at the upstream (Apple consent-revoked,
                # Facebook deauthorize) and now signs in with it again: the same subject is the
                # same person, so the link comes back rather than leaving the account behind.
                linked.status = "active"
                security_events.record(session, security_events.IDENTITY_RELINKED,
                                       linked.user_id, now, alias=identity.alias)
            if linked.status != "active" or await _disabled(session, linked.user_id):
                return FederatedLogin(interaction_id,
                                      message=gettext("This sign-in method is disabled."))
            _refresh_identity(ctx, linked, identity, now)
        else:
            resolved = await _resolve_by_email(ctx, session, identity, policy, interaction_id,
                                               browser_id, now)
            if isinstance(resolved, FederatedLogin):
                return resolved
            linked = resolved
        # An account with a second factor asks for it before any session starts.
        waiting = await second_factor.wait_in_interaction(
            ctx, session, interaction, linked.user_id, browser_id, ["fed"],
            identity_id=linked.id)
        cookie = None
        if waiting is None:
            cookie, sid = await start_session(ctx, session, linked.user_id, previous_cookie,
                                              amr=["fed"], identity_id=linked.id)
            interaction.session_sid = sid
        refresh = await _import_profile(session, interaction, linked, identity, now)
        identity_id = linked.id
    ctx.notify_outbox()
    if refresh:
        await profile_import.refresh_copies(ctx, identity_id, refresh)
    if waiting is not None:
        raise waiting
    return FederatedLogin(interaction_id, session_cookie=cookie)


async def _resolve_by_email(ctx: Context, session: AsyncSession, identity: UpstreamIdentity,
                            policy: LinkingPolicy, interaction_id: str, browser_id: str,
                            now: int) -> Identity | FederatedLogin:
    """An identity new to us: a new account, or a link to the account holding its email
    address, or the answer that stops there (disabled, denied, prove the account first)."""
    match = (await user_store.find_by_email(session, identity.email)
             if identity.email else None)
    if match is None:
        return await _create_account(ctx, session, identity, now)
    replaced = await _has_other_subject(session, match.id, identity)
    if replaced:
        # Requirement 17: the address and domain are the same but the upstream subject is not
        # (a re-registered domain or account). Never a login into the existing account on the
        # email alone: the policy's prompt (or deny) applies.
        security_events.record(session, security_events.UPSTREAM_SUBJECT_CHANGED,
                               match.id, now, alias=identity.alias)
    if match.disabled_at is not None:
        return FederatedLogin(interaction_id, message=gettext("This sign-in method is disabled."))
    if policy is LinkingPolicy.deny:
        return FederatedLogin(interaction_id, message=(
            gettext("An account already uses this email address. Sign in with your password.")
            if match.password_hash is not None else
            gettext("An account already uses this email address. Sign in the way you did "
                    "before.")))
    if replaced:
        return await _ask_to_prove(ctx, session, identity, match, interaction_id, browser_id,
                                   now)
    if identity.email_authoritative and not match.email_verified:
        # Requirement 23: the provider proves the address; an unverified local account holding
        # it may be an attacker's pre-registration. Its password and sessions go before the
        # link, so nothing the pre-registration set up survives.
        await _strip_unverified_account(ctx, session, match)
        return await link_identity(ctx, session, match.id, identity, now,
                                   via="authoritative email")
    if may_auto_link(policy, email_authoritative=identity.email_authoritative,
                     local_email_verified=match.email_verified):
        # Requirement 20: verified upstream, authoritative for the domain, verified local.
        return await link_identity(ctx, session, match.id, identity, now, via="automatic")
    return await _ask_to_prove(ctx, session, identity, match, interaction_id, browser_id, now)


async def _import_profile(session: AsyncSession, interaction: Interaction, linked: Identity,
                          identity: UpstreamIdentity, now: int) -> dict[str, str]:
    """Issue 4 item 6: attributes already allowed follow their sync mode (requirement 35);
    undecided ones wait in the interaction for the consent page. Returns the expiring pictures
    to copy again once the transaction is over (requirement 37)."""
    user = await session.get(User, linked.user_id)
    refresh = await profile_import.sync_allowed(session, user, linked, identity, now) \
        if user else {}
    interaction.pending_import = profile_import.offer(linked, identity,
                                                      new=not linked.import_choices)
    return refresh


async def _disabled(session: AsyncSession, user_id: str) -> bool:
    user = await session.get(User, user_id)
    return user is None or user.disabled_at is not None


async def _has_other_subject(session: AsyncSession, user_id: str,
                             identity: UpstreamIdentity) -> bool:
    """Whether the account already holds an identity of this upstream under another subject."""
    return any(linked.namespace == identity.namespace and linked.subject != identity.subject
               for linked in await store.identities_of_user(session, user_id))


def _refresh_identity(ctx: Context, linked: Identity, identity: UpstreamIdentity, now: int
                      ) -> None:
    # Requirement 16: the subject decides the account; a changed email is only recorded.
    linked.email = identity.email
    linked.email_verified = identity.email_verified
    linked.last_login_at = now  # the profile follows the customer's import choices
    if identity.transfer_sub:  # requirement 18
        linked.transfer_sub = identity.transfer_sub
    upstream_tokens.keep(ctx, linked, identity)


def _new_identity(ctx: Context, user_id: str, identity: UpstreamIdentity, now: int
                  ) -> Identity:
    linked = Identity(
        id=new_handle(16), user_id=user_id, alias=identity.alias, namespace=identity.namespace,
        subject=identity.subject, email=identity.email, email_verified=identity.email_verified,
        # Nothing imported unasked (issue 4 item 6): the consent page asks first.
        profile={}, import_choices={}, refresh_token_encrypted=None, status="active",
        created_at=now, last_login_at=now, transfer_sub=identity.transfer_sub)
    upstream_tokens.keep(ctx, linked, identity)
    return linked

# How an identity came to its account, in its security event: with the account itself.
NEW_ACCOUNT = "new account"


async def link_identity(ctx: Context, session: AsyncSession, user_id: str,
                        identity: UpstreamIdentity, now: int, *, via: str) -> Identity:
    """Add the identity to the account, with the security event that says how and, unless
    the account is being created with it, the notice to its address (ATO-15)."""
    linked = _new_identity(ctx, user_id, identity, now)
    session.add(linked)
    security_events.record(session, security_events.IDENTITY_LINKED, user_id, now,
                           alias=identity.alias, via=via)
    if via != NEW_ACCOUNT:
        await change_notice.notify(ctx, session, user_id, now, security_events.IDENTITY_LINKED,
                                   provider=identity.alias)
    return linked


async def _create_account(ctx: Context, session: AsyncSession, identity: UpstreamIdentity,
                          now: int) -> Identity:
    user = User(
        id=new_public_id(), email=user_store.normalize_email(identity.email)
        if identity.email else None,
        # Requirement 22: only an authoritative upstream's verified address counts as verified.
        email_verified=identity.email_authoritative, password_hash=None,
        profile={}, created_at=now, updated_at=now)
    session.add(user)
    await session.flush()
    return await link_identity(ctx, session, user.id, identity, now, via=NEW_ACCOUNT)


async def _strip_unverified_account(ctx: Context, session: AsyncSession, user: User) -> None:
    now = ctx.now()
    user.password_hash = None
    user.email_verified = True
    user.updated_at = now
    await end_sessions_of_user(ctx, session, user.id)
    # Requirement 26 (trojan identifier, §4.1 attack 3): identities linked while nobody had
    # proved the address may be the pre-registering attacker's own; they go too. Their
    # sessions ended above with every other session of the account.
    for planted in await store.identities_of_user(session, user.id):
        security_events.record(session, security_events.IDENTITY_UNLINKED, user.id, now,
                               alias=planted.alias, reason="unverified_account")
        await session.delete(planted)


async def _ask_to_prove(ctx: Context, session: AsyncSession, identity: UpstreamIdentity,
                        match: User, interaction_id: str, browser_id: str, now: int
                        ) -> FederatedLogin:
    """Requirement 19: link only after the customer signs in to the existing account."""
    name = identity.alias.capitalize()
    if match.password_hash is None:
        # No password to prove it with: the customer signs in the way they did before and
        # connects this provider from the account center (which asks for a fresh sign-in).
        # Which providers the account uses is not said: the email alone proves nothing.
        return FederatedLogin(interaction_id, message=gettext(
            "An account already uses this email address. Sign in the way you did before, then "
            "connect your %(provider)s account under Sign-in methods on your account page.",
            provider=name))
    handle = new_handle()
    pending = {"alias": identity.alias, "namespace": identity.namespace,
               "subject": identity.subject, "email": identity.email,
               "email_verified": identity.email_verified,
               "claims": {k: {"value": v.value, "sync": v.sync.value}
                          for k, v in identity.claims.items()},
               "expiring": sorted(identity.expiring_claims),  # requirement 37
               "granted_scopes": sorted(identity.granted_scopes),  # requirement 38
               # Requirement 31: the token of this very code exchange (Apple's refresh token
               # comes only now), kept inside this encrypted, single-use state.
               "refresh_token": identity.refresh_token, "access_token": identity.access_token}
    session.add(FederationState(
        state_hash=digest(handle), purpose=LINK, alias=identity.alias,
        browser_hash=digest(browser_id), interaction_id=interaction_id, user_id=match.id,
        transaction_encrypted=state_encryptor(ctx).encrypt(pending), created_at=now,
        expires_at=now + STATE_TTL, used_at=None))
    return FederatedLogin(interaction_id, link_handle=handle, message=gettext(
        "An account already uses this email address. Sign in with its password to connect "
        "your %(provider)s account to it.", provider=name))


async def complete_link(ctx: Context, session: AsyncSession, handle_hash: str,
                        browser_id: str, user_id: str) -> bool:
    """After a password sign-in (and the second factor, when the account has one): link the
    pending identity whose handle has this digest if it was for this very account, in this
    browser (requirement 25: the link is bound to the account that proved itself)."""
    row = await store.claim_state(session, handle_hash, (LINK,), ctx.now())
    if row is None or row.user_id != user_id or row.browser_hash != digest(browser_id):
        return False
    data = state_encryptor(ctx).decrypt(row.transaction_encrypted)
    identity = UpstreamIdentity(
        alias=data["alias"], namespace=data["namespace"], subject=data["subject"],
        email=data["email"], email_verified=data["email_verified"], email_authoritative=False,
        claims={k: MappedClaim(v["value"], SyncMode(v["sync"]))
                for k, v in data["claims"].items()}, raw={},
        refresh_token=data.get("refresh_token"), access_token=data.get("access_token"),
        expiring_claims=frozenset(data.get("expiring", ())),
        granted_scopes=frozenset(data.get("granted_scopes", ())))
    if await store.find_identity(session, identity.namespace, identity.subject) is not None:
        return False  # requirement 15: already on an account
    linked = await link_identity(ctx, session, user_id, identity, ctx.now(),
                                 via="password proof")
    interaction = await session.get(Interaction, row.interaction_id or "")
    if interaction is not None:  # issue 4 item 6: the consent page asks what to import
        interaction.pending_import = profile_import.offer(linked, identity, new=True)
    log.info("upstream identity linked after the customer proved the account")
    return True


async def login_and_link(ctx: Context, interaction_id: str, browser_id: str, email: str,
                         password: str, previous_cookie: str | None, handle: str) -> SignedIn:
    """The password sign-in that proves the existing account, then links the pending
    identity to it; returns the new session (LoginFailed when the password is wrong;
    SecondFactorRequired when the account has a second factor, which links it after)."""
    async with ctx.db.transaction() as session:
        await load_interaction(ctx, session, interaction_id, browser_id)
    proof = await verify_password_login(ctx, email, password)
    if proof is None:
        raise LoginFailed()
    user = proof.user
    async with ctx.db.transaction() as session:
        interaction, _ = await load_interaction(ctx, session, interaction_id, browser_id)
        waiting = await second_factor.wait_in_interaction(
            ctx, session, interaction, user.id, browser_id, ["pwd"], link_hash=digest(handle),
            has_second_factor=proof.second_factor)
        if waiting is None:
            cookie, _ = await link_and_start_session(ctx, session, interaction, user.id,
                                                     digest(handle), browser_id,
                                                     previous_cookie, ["pwd"])
    if waiting is not None:
        raise waiting
    ctx.notify_outbox()
    return SignedIn(cookie)


async def link_and_start_session(ctx: Context, session: AsyncSession, interaction: Interaction,
                                 user_id: str, handle_hash: str, browser_id: str,
                                 previous_cookie: str | None, amr: list[str]
                                 ) -> tuple[str, bool]:
    """Link the pending identity (when it is this account's) and start the session of the
    sign-in that proved the account; returns its cookie and whether the link was made."""
    linked = await complete_link(ctx, session, handle_hash, browser_id, user_id)
    amr = [*amr[:1], "fed", *amr[1:]] if linked else amr
    cookie, sid = await start_session(ctx, session, user_id, previous_cookie, amr=amr)
    interaction.session_sid = sid
    if linked:  # requirement 24: a new way in ends every other session and refresh token
        await end_sessions_of_user(ctx, session, user_id, keep_sid=sid)
    return cookie, linked
