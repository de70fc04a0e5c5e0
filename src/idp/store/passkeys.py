"""Passkeys at rest and the challenges of WebAuthn ceremonies. A challenge is taken with one
conditional DELETE, so of two posts answering the same challenge only one goes on."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import Passkey, WebAuthnChallenge
from idp.store.prepared import Connection, Prepared, dialect_of


async def passkeys_of_user(session: AsyncSession, user_id: str) -> list[Passkey]:
    return list(await session.scalars(
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)))


async def has_passkey(session: AsyncSession, user_id: str) -> bool:
    return await session.scalar(
        select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None


async def count_passkeys(session: AsyncSession, user_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(Passkey).where(
        Passkey.user_id == user_id)) or 0)


async def by_credential_id(session: AsyncSession, credential_id: str) -> Passkey | None:
    return await session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))


async def add_passkey(session: AsyncSession, passkey: Passkey) -> None:
    session.add(passkey)
    await session.flush()


async def record_use(session: AsyncSession, passkey_id: str, old_count: int, new_count: int,
                     backed_up: bool, now: int) -> bool:
    """Store the new counter, only if no other assertion moved it meanwhile: of two
    concurrent assertions with the same counter, one wins."""
    result = await session.execute(
        update(Passkey).where(Passkey.id == passkey_id, Passkey.sign_count == old_count)
        .values(sign_count=new_count, backed_up=backed_up, last_used_at=now))
    return bool(getattr(result, "rowcount", 0))


async def rename_passkey(session: AsyncSession, user_id: str, passkey_id: str,
                         name: str) -> bool:
    result = await session.execute(update(Passkey).where(
        Passkey.id == passkey_id, Passkey.user_id == user_id).values(name=name))
    return bool(getattr(result, "rowcount", 0))


async def delete_passkey(session: AsyncSession, user_id: str, passkey_id: str) -> str | None:
    """The removed passkey's name, or None when the account has no such passkey."""
    row = await session.scalar(select(Passkey).where(
        Passkey.id == passkey_id, Passkey.user_id == user_id))
    if row is None:
        return None
    await session.delete(row)
    return row.name


async def delete_passkeys_of_user(session: AsyncSession, user_id: str) -> int:
    result = await session.execute(delete(Passkey).where(Passkey.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


_CHALLENGES = cast(Table, WebAuthnChallenge.__table__)


def _put(insert: Any) -> Prepared:
    statement = insert(_CHALLENGES).values(
        id=bindparam("b_id"), challenge=bindparam("b_challenge"),
        user_id=bindparam("b_user_id"), expires_at=bindparam("b_expires_at"))
    return Prepared(statement.on_conflict_do_update(
        index_elements=[_CHALLENGES.c.id],
        set_={"challenge": statement.excluded.challenge, "user_id": statement.excluded.user_id,
              "expires_at": statement.excluded.expires_at}))


_PUT = {"postgresql": _put(pg_insert), "sqlite": _put(sqlite_insert)}


async def put_challenge(connection: Connection, key: str, challenge: str,
                        user_id: str | None, expires_at: int) -> None:
    """A new ceremony here replaces this browser's earlier one (one upsert: two pages of the
    same browser rendered at once both succeed, the later challenge stands). Expired ones
    are never taken (take_challenge) and the maintenance loop deletes them
    (purge_challenges)."""
    await _PUT[dialect_of(connection)].run(connection, {
        "b_id": key, "b_challenge": challenge, "b_user_id": user_id,
        "b_expires_at": expires_at})


async def take_challenge(session: AsyncSession, key: str, now: int
                         ) -> WebAuthnChallenge | None:
    """The challenge waiting under `key`, used up; None when there is none (never issued,
    expired, or already answered)."""
    row = await session.get(WebAuthnChallenge, key)
    if row is None or row.expires_at <= now:
        return None
    result = await session.execute(delete(WebAuthnChallenge).where(
        WebAuthnChallenge.id == key, WebAuthnChallenge.challenge == row.challenge))
    if not getattr(result, "rowcount", 0):
        return None
    session.expunge(row)
    return row


async def purge_challenges(session: AsyncSession, now: int) -> None:
    """Challenges past their time: every login page view writes one (the maintenance loop)."""
    await session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
