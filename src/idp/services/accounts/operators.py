"""Operators' use cases on customer accounts (the admin API; the CLI's `users` commands call
the erasure, export and second-factor reset below them): find, read, disable and enable, sign
out everywhere, reset second factors, delete, export. Each change is in the admin audit log,
which records only what an operator did to which account, never the account's personal data,
so an erasure leaves nothing there to erase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.services import InvalidInput, NotFound
from idp.services.accounts import audit, erasure
from idp.services.accounts.export import export_account
from idp.services.context import Context
from idp.services.signin import change_notice, security_events
from idp.services.signin.sessions import end_sessions_of_user
from idp.store import factors as factor_store
from idp.store import passkeys as passkey_store
from idp.store.models import User
from idp.store.users import normalize_email

MAX_PAGE = 200


@dataclass(frozen=True)
class Account:
    id: str
    email: str | None
    email_verified: bool
    has_password: bool
    created_at: int
    updated_at: int
    disabled_at: int | None


def _account(user: User) -> Account:
    return Account(user.id, user.email, user.email_verified, user.password_hash is not None,
                   user.created_at, user.updated_at, user.disabled_at)


async def find_accounts(ctx: Context, *, email: str | None = None, limit: int = 50,
                        after: str | None = None) -> list[Account]:
    """By id order; `email` matches the start of the (normalised) address; `after` is the
    last id of the previous page."""
    query = select(User).order_by(User.id).limit(max(1, min(limit, MAX_PAGE)))
    if email:
        prefix = normalize_email(email)
        if "\x00" in prefix or len(prefix) > 320:
            raise InvalidInput("email is not an address or the start of one")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(User.email.like(f"{escaped}%", escape="\\"))
    if after:
        query = query.where(User.id > after[:64])
    async with ctx.db.transaction(read_only=True) as session:
        return [_account(user) for user in await session.scalars(query)]


async def get_account(ctx: Context, user_id: str) -> Account:
    async with ctx.db.transaction(read_only=True) as session:
        user = await _user(session, user_id)
        return _account(user)


async def set_disabled(ctx: Context, user_id: str, disabled: bool, *, actor: str) -> Account:
    """Disabled: no sign-in of any kind, every session ended (apps told by back-channel
    logout), every token revoked. Enabled again: the customer signs in afresh."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        user = await _user(session, user_id, lock=True)
        before = {"disabled": user.disabled_at is not None}
        if disabled and user.disabled_at is None:
            user.disabled_at = now
            await end_sessions_of_user(ctx, session, user_id, revoke="all")
            security_events.record(session, security_events.ACCOUNT_DISABLED, user_id, now,
                                   reason="operator")
        elif not disabled:
            user.disabled_at = None
        user.updated_at = now
        audit.record(session, now, actor, "user.disable" if disabled else "user.enable",
                     "user", user_id, before, {"disabled": disabled})
        account = _account(user)
    ctx.notify_outbox()
    return account


async def sign_out_everywhere(ctx: Context, user_id: str, *, actor: str) -> int:
    """Every session ended (apps told) and every refresh token revoked; returns how many
    sessions ended."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        await _user(session, user_id)
        ended = await end_sessions_of_user(ctx, session, user_id, revoke="refresh")
        audit.record(session, now, actor, "user.sign_out", "user", user_id, None,
                     {"sessions_ended": len(ended)})
    ctx.notify_outbox()
    return len(ended)


async def reset_second_factors(ctx: Context, user_id: str, *, actor: str) -> dict[str, Any]:
    """The customer lost the authenticator and the recovery codes, and support has checked who
    they are: the second factors go (the authenticator app and every recovery code), and so
    does every session and refresh token, in case it was not the customer who lost them. The
    customer signs in with the password alone and sets two-step sign-in up again; the account's
    security timeline shows the reset."""
    now = ctx.now()
    async with ctx.db.transaction() as session:
        await _user(session, user_id, lock=True)
        codes = await factor_store.count_unused_recovery_codes(session, user_id)
        removed = await factor_store.delete_totp(session, user_id)
        passkeys = await passkey_store.delete_passkeys_of_user(session, user_id)
        await factor_store.drop_pending_of_user(session, user_id)
        ended = await end_sessions_of_user(ctx, session, user_id, revoke="refresh")
        changes: list[str] = []
        if removed:
            security_events.record(session, security_events.TOTP_REMOVED, user_id, now,
                                   reason="operator")
            changes.append(security_events.TOTP_REMOVED)
        if passkeys:
            security_events.record(session, security_events.PASSKEY_REMOVED, user_id, now,
                                   reason="operator", count=passkeys)
            changes.append(security_events.PASSKEY_REMOVED)
        if changes:  # one mail for the one reset
            await change_notice.notify(ctx, session, user_id, now, *changes, by_operator=True)
        result = {"totp_removed": removed, "recovery_codes_removed": codes,
                  "passkeys_removed": passkeys, "sessions_ended": len(ended)}
        audit.record(session, now, actor, "user.reset_second_factors", "user", user_id,
                     {"totp": removed, "recovery_codes": codes, "passkeys": passkeys},
                     {"totp": False, "recovery_codes": 0, "passkeys": 0})
    ctx.notify_outbox()
    return result


async def delete(ctx: Context, user_id: str, *, actor: str) -> dict[str, Any]:
    try:
        done = await erasure.delete_account(ctx, user_id, initiator="operator")
    except erasure.AccountNotFound:
        raise NotFound(f"no account {user_id[:64]}") from None
    result = {"apps_disconnected": done.apps_disconnected,
              "sessions_ended": done.sessions_ended,
              "upstream_revocations": done.upstream_revocations}
    async with ctx.db.transaction() as session:
        audit.record(session, ctx.now(), actor, "user.delete", "user", user_id, None, result)
    return result


async def export(ctx: Context, user_id: str, *, actor: str) -> Any:
    """The account's data as the customer would download it (GDPR Art. 15/20); who exported
    whose data is recorded."""
    async with ctx.db.transaction(read_only=True) as session:
        await _user(session, user_id)
    data = await export_account(ctx, user_id)
    async with ctx.db.transaction() as session:
        audit.record(session, ctx.now(), actor, "user.export", "user", user_id, None, None)
    return data


async def _user(session: Any, user_id: str, lock: bool = False) -> User:
    if not user_id or len(user_id) > 64 or "\x00" in user_id:
        raise NotFound("no such account")
    user: User | None = await session.get(User, user_id, with_for_update=lock or None)
    if user is None:
        raise NotFound(f"no account {user_id}")
    return user
