"""Accounts, and the one-time tokens mailed to their owners."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.factors import second_factor_of
from idp.store.models import AccountToken, User
from idp.store.prepared import Connection, Prepared, detached


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    if "\x00" in email:
        return None  # PostgreSQL text cannot hold NUL: no account has such an address
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


# The password sign-in's statements, built once and run as `Prepared` in the caller's unit of
# work (an ORM session or `Database.atomic()`).
_USERS = cast(Table, User.__table__)
_USER_COLUMNS = tuple(column.name for column in _USERS.c)
# With the account, whether a second factor will be asked for after the password: the
# sign-in then needs no statement of its own to find out.
ACCOUNT_COLUMNS = (*_USERS.c, second_factor_of(_USERS.c.id).label("has_second_factor"))
_ACCOUNT_BY_EMAIL = Prepared(
    select(*ACCOUNT_COLUMNS).where(_USERS.c.email == bindparam("b_email")))
_SET_PASSWORD_HASH = Prepared(update(_USERS).where(_USERS.c.id == bindparam("b_id")).values(
    password_hash=bindparam("b_hash"), updated_at=bindparam("b_now")))


async def account_by_email(connection: Connection, email: str) -> tuple[User, bool] | None:
    """The account with this address as a detached, read-only object (read it, never change
    it), and whether it has a second factor: the password check's lookup, without the ORM's
    row loading."""
    if "\x00" in email:
        return None  # PostgreSQL text cannot hold NUL: no account has such an address
    return account_of(await _ACCOUNT_BY_EMAIL.first(connection,
                                                    {"b_email": normalize_email(email)}))


def account_of(values: Any) -> tuple[User, bool] | None:
    """`account_by_email`'s answer from a row of `ACCOUNT_COLUMNS` (their values None: no
    account)."""
    if values is None or values["id"] is None:
        return None
    return detached(User, "", _USER_COLUMNS, values), bool(values["has_second_factor"])


async def set_password_hash(connection: Connection, user_id: str, password_hash: str, now: int
                            ) -> None:
    await _SET_PASSWORD_HASH.run(connection, {"b_id": user_id, "b_hash": password_hash,
                                              "b_now": now})


async def add_account_token(session: AsyncSession, token_hash: str, purpose: str,
                            user_id: str, now: int, expires_at: int,
                            detail: dict[str, Any] | None = None) -> None:
    """A new token for `purpose`; the account's earlier ones for it stop working, so only the
    latest link mailed works. The account's row is locked first: two of these at once (the
    dispatcher carries out requests side by side) take turns, and the second removes the
    first's token instead of both surviving (PostgreSQL; SQLite's writers take turns anyway)."""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    await session.execute(delete(AccountToken).where(AccountToken.user_id == user_id,
                                                     AccountToken.purpose == purpose))
    session.add(AccountToken(token_hash=token_hash, purpose=purpose, user_id=user_id,
                             detail=detail, created_at=now, expires_at=expires_at))


async def account_token(session: AsyncSession, token_hash: str, purpose: str, now: int
                        ) -> tuple[str, dict[str, Any] | None] | None:
    """Whose live token this is and what it carries, without using it up."""
    row = (await session.execute(select(AccountToken.user_id, AccountToken.detail).where(
        AccountToken.token_hash == token_hash, AccountToken.purpose == purpose,
        AccountToken.expires_at > now))).first()
    return (str(row[0]), row[1]) if row is not None else None


async def take_account_token(session: AsyncSession, token_hash: str, purpose: str, now: int
                             ) -> tuple[str, dict[str, Any] | None] | None:
    """Use a live token up, in one conditional DELETE (two uses racing: one wins): whose it
    was and what it carries, or None."""
    row = (await session.execute(
        delete(AccountToken)
        .where(AccountToken.token_hash == token_hash, AccountToken.purpose == purpose,
               AccountToken.expires_at > now)
        .returning(AccountToken.user_id, AccountToken.detail))).first()
    return (str(row[0]), row[1]) if row is not None else None


def add_unowned_token(session: AsyncSession, token_hash: str, purpose: str, now: int,
                      expires_at: int, detail: dict[str, Any]) -> None:
    """A token that belongs to no account yet (a registration's link)."""
    session.add(AccountToken(token_hash=token_hash, purpose=purpose, user_id=None,
                             detail=detail, created_at=now, expires_at=expires_at))


async def unowned_token(session: AsyncSession, token_hash: str, purpose: str, now: int
                        ) -> dict[str, Any] | None:
    """What a live unowned token carries, without using it up."""
    return await session.scalar(select(AccountToken.detail).where(
        AccountToken.token_hash == token_hash, AccountToken.purpose == purpose,
        AccountToken.user_id.is_(None), AccountToken.expires_at > now))


async def take_unowned_token(session: AsyncSession, token_hash: str, purpose: str, now: int
                             ) -> dict[str, Any] | None:
    """Use a live unowned token up (one conditional DELETE: of two uses, one wins)."""
    return (await session.execute(
        delete(AccountToken)
        .where(AccountToken.token_hash == token_hash, AccountToken.purpose == purpose,
               AccountToken.user_id.is_(None), AccountToken.expires_at > now)
        .returning(AccountToken.detail))).scalar_one_or_none()


async def purge_account_tokens(session: AsyncSession, now: int) -> None:
    await session.execute(delete(AccountToken).where(AccountToken.expires_at <= now))
