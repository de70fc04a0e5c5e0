"""What an upstream's withdrawal of a sign-in method does on our side (federation.md §9
requirements 27-30 and 32), inside the hook's unit of work: the logins it led to end, the apps
are told through our own back-channel, the stored upstream token goes, and an account left
with no way in is deactivated according to policy.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.notifications.outbox import enqueue_security_event
from idp.services.context import Context
from idp.services.signin import security_events
from idp.services.signin.sessions import end_session, end_sessions_of_user
from idp.services.upstream import tokens
from idp.services.upstream.identities import DEAD, REVOKED, has_way_in
from idp.store import clients as client_store
from idp.store import federation as store
from idp.store import grants as grant_store
from idp.store import profile as profile_store
from idp.store import tokens as token_store
from idp.store import users as user_store
from idp.store.models import Identity, Picture, SessionClient, User

# The subject will never sign in again (Apple `account-delete`: "the `sub` will never be
# valid again", §2.7).
# OpenID CAEP 1.0 §3.3 Credential Change: "a credential was created, changed, revoked or
# deleted". A customer withdrawing an upstream sign-in method is exactly that, seen from the
# apps: one way of signing in to this account is gone. None of CAEP's listed credential
# types names an upstream identity; CAEP allows "any other credential type supported
# mutually by the Transmitter and the Receiver", so brand apps receive `federated`, with
# the provider in `friendly_name`.
CREDENTIAL_CHANGE_EVENT = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
FEDERATED_CREDENTIAL = "federated"
ChangeType = Literal["revoke", "delete"]


async def end_logins(ctx: Context, session: AsyncSession, identity: Identity) -> list[str]:
    """End every browser session signed in with this identity (apps are sent back-channel
    logout tokens) and revoke every token issued in those sessions, offline ones included;
    returns the sessions' `sid`s."""
    sids = await store.sids_of_identity(session, identity.id)
    for sid in sids:
        await end_session(ctx, session, sid)
    await token_store.revoke_all_of_sessions(session, sids, ctx.now())
    return sids


async def withdraw_identity(ctx: Context, session: AsyncSession, identity: Identity, *,
                            dead: bool) -> None:
    """Requirement 27 `consent-revoked` (and Facebook deauthorize, requirement 29): the
    identity is unlinked but kept as REVOKED, so the same subject signing in again returns to
    the same account; everything its logins led to ends, the stored upstream token goes, and
    the apps are told. `dead` (`account-delete`): the subject never signs in again, and an
    account left with no other way in is deactivated according to policy. Withdrawing what
    is already withdrawn (a repeated or late notification) changes nothing and tells no app
    twice."""
    if identity.status == DEAD or (identity.status == REVOKED and not dead):
        return
    await _withdraw(ctx, session, identity, "delete" if dead else "revoke")
    identity.status = DEAD if dead else REVOKED
    tokens.forget(identity)
    if dead:
        await deactivate_if_stranded(ctx, session, identity.user_id, identity.alias)


async def erase_identity(ctx: Context, session: AsyncSession, identity: Identity) -> None:
    """Requirement 30 (Facebook data deletion): as a withdrawal, and the identity and the
    data imported with it are deleted; an account left with no way in is deactivated
    according to policy, as after `account-delete`."""
    user_id, alias = identity.user_id, identity.alias
    await _withdraw(ctx, session, identity, "delete")
    await erase_imported(session, identity)
    await session.delete(identity)
    await session.flush()
    # Nothing is left to sign in with unless the account has a password or another identity.
    await deactivate_if_stranded(ctx, session, user_id, alias)


async def _withdraw(ctx: Context, session: AsyncSession, identity: Identity,
                    change: ChangeType) -> None:
    recipients = await _subscribed_apps(session, identity)
    await end_logins(ctx, session, identity)
    await _tell_apps(ctx, session, identity, recipients, change)


async def _subscribed_apps(session: AsyncSession, identity: Identity) -> list[str]:
    """Apps holding a live grant of the customer, or that got tokens in a session signed in
    with this identity (requirement 27, "subscribed brands")."""
    granted = [g.client_id for g in
               await grant_store.live_grants_of_user(session, identity.user_id)]
    sids = await store.sids_of_identity(session, identity.id)
    in_sessions: list[str] = list(await session.scalars(select(SessionClient.client_id).where(
        SessionClient.sid.in_(sids)))) if sids else []
    return sorted({*granted, *in_sessions})


async def _tell_apps(ctx: Context, session: AsyncSession, identity: Identity,
                     client_ids: list[str], change: ChangeType) -> None:
    """A Security Event Token for each app with a receiver (RFC 8417, RFC 8935 push). Its
    subject is our `sub` for the customer, never the upstream's (requirement 34)."""
    name = identity.alias.capitalize()
    event: dict[str, Any] = {
        "credential_type": FEDERATED_CREDENTIAL, "change_type": change,
        "friendly_name": f"Sign in with {name}",
        # The customer withdrew it at the provider (or deleted their account there).
        "initiating_entity": "user",
        "reason_admin": {"en": f"The customer withdrew Sign in with {name} at {name}"},
    }
    now = ctx.now()
    for client_id in client_ids:
        client = await client_store.get_client(session, client_id)
        if client is not None:
            enqueue_security_event(session, client, ctx.settings.issuer,
                                   ctx.subject_of(client, identity.user_id),
                                   CREDENTIAL_CHANGE_EVENT, event, now)


async def deactivate_if_stranded(ctx: Context, session: AsyncSession, user_id: str,
                                 alias: str) -> bool:
    """Requirement 27: "An account with no other login method is deactivated according to
    policy". Other methods: a password, or another identity still usable. Deactivated: no
    sign-in of any kind, every session ended (apps told), every token revoked."""
    if ctx.settings.upstream_account_delete_policy != "deactivate":
        return False
    user = await session.get(User, user_id)
    if user is None or user.disabled_at is not None or await has_way_in(session, user):
        return False
    now = ctx.now()
    user.disabled_at = now
    user.updated_at = now
    await end_sessions_of_user(ctx, session, user_id, revoke="all")
    security_events.record(session, security_events.ACCOUNT_DISABLED, user_id, now,
                           reason="upstream_account_deleted", alias=alias)
    return True


async def erase_imported(session: AsyncSession, identity: Identity) -> None:
    """Requirement 30 (and PRIV-08 when the customer removes the link): the data the identity
    imported. `identity.profile` goes with the row;
    the pictures copied from this upstream go; an attribute of the account's profile goes when
    it still holds the value this identity imported and no other identity provides it."""
    user = await session.get(User, identity.user_id)
    if user is None:
        return
    others = [i for i in await store.identities_of_user(session, user.id)
              if i.id != identity.id]
    profile = dict(user.profile)
    for name, item in identity.profile.items():
        if not isinstance(item, dict) or item.get("source") != identity.alias:
            continue
        value = item.get("value")
        elsewhere = any(_imported(o, name) == value for o in others)
        if name in profile and profile[name] == value and not elsewhere:
            del profile[name]
    # The provenance of what went goes with it (issue 16 item 1).
    await profile_store.forget_provenance(session, user.id,
                                          sorted(set(user.profile) - set(profile)))
    user.profile = profile
    # Facebook's address is never verified (requirement 22): an unverified address on an
    # account without a password is the one Facebook gave us, so it goes too.
    if (identity.email and user.password_hash is None and not user.email_verified
            and user.email == user_store.normalize_email(identity.email)):
        user.email = None
    await session.execute(delete(Picture).where(
        Picture.user_id == user.id, Picture.source == identity.alias))


def _imported(identity: Identity, name: str) -> Any:
    item = identity.profile.get(name)
    return item.get("value") if isinstance(item, dict) else None


async def forget_matching_token(ctx: Context, session: AsyncSession, namespace: str,
                                identifier: str, alg: str | None) -> int:
    """Requirement 28 `token-revoked`: delete the stored upstream token the event names, by
    its double SHA-512 (indexed) or by its first 16 characters; returns how many matched."""
    if alg == "hash_base64_sha512_sha512":
        matched = list(await session.scalars(select(Identity).where(
            Identity.namespace == namespace, Identity.refresh_token_digest == identifier)))
    elif alg == "prefix" and len(identifier) == tokens.RISC_PREFIX_LENGTH:
        matched = [i for i in await _holding_tokens(session, namespace)
                   if _prefix_matches(ctx, i, identifier)]
    else:
        return 0
    # Normally one; were two tokens to share a prefix, both are forgotten: keeping a token
    # Google says was revoked is the worse mistake.
    for identity in matched:
        tokens.forget(identity)
    return len(matched)


async def _holding_tokens(session: AsyncSession, namespace: str) -> list[Identity]:
    return list(await session.scalars(select(Identity).where(
        Identity.namespace == namespace, Identity.refresh_token_encrypted.is_not(None))))


def _prefix_matches(ctx: Context, identity: Identity, prefix: str) -> bool:
    if identity.refresh_token_encrypted is None:
        return False
    stored = tokens.unseal(ctx, identity.refresh_token_encrypted).token
    # The stored token is a secret: compared in constant time.
    return hmac.compare_digest(stored[:tokens.RISC_PREFIX_LENGTH].encode(), prefix.encode())
