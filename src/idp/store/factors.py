"""Second factors at rest: authenticator apps, recovery codes, and sign-ins waiting for the
second factor. Single-use things are taken with one conditional UPDATE or DELETE, so of two
concurrent attempts with the same code only one wins."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.store.models import Passkey, PendingSignIn, RecoveryCode, TotpFactor
from idp.store.prepared import Connection, Prepared


async def totp_factor(session: AsyncSession, user_id: str) -> TotpFactor | None:
    return await session.get(TotpFactor, user_id)


async def has_totp(session: AsyncSession, user_id: str) -> bool:
    return await session.scalar(
        select(TotpFactor.user_id).where(TotpFactor.user_id == user_id)) is not None


_TOTP = cast(Table, TotpFactor.__table__)
_PASSKEYS = cast(Table, Passkey.__table__)


def second_factor_of(user_id: Any) -> ColumnElement[bool]:
    """Whether the account `user_id` (a value or a column) has a second factor: an
    authenticator app or a passkey."""
    return (exists().where(_TOTP.c.user_id == user_id)
            | exists().where(_PASSKEYS.c.user_id == user_id))


_HAS_SECOND_FACTOR = Prepared(select(second_factor_of(bindparam("b_user_id")).label("has")))


async def has_second_factor(connection: Connection, user_id: str) -> bool:
    """An authenticator app or a passkey, in one statement (every password sign-in asks)."""
    row = await _HAS_SECOND_FACTOR.first(connection, {"b_user_id": user_id})
    return row is not None and bool(row["has"])


async def save_totp(session: AsyncSession, user_id: str, secret_encrypted: str, step: int,
                    now: int) -> bool:
    """Store the account's app, its confirming code's step taken; False when the account
    has one already (a second confirmation of the same setup, or another tab's)."""
    if await has_totp(session, user_id):
        return False
    session.add(TotpFactor(user_id=user_id, secret_encrypted=secret_encrypted,
                           last_step=step, created_at=now))
    await session.flush()
    return True


async def take_step(session: AsyncSession, user_id: str, step: int) -> bool:
    """Accept a code of time step `step` once: only when no code of this step or a later one
    was accepted before (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of
    the OTP after the successful validation has been issued for the first OTP"). One
    conditional UPDATE: a concurrent second post waits for the row and then finds it taken."""
    result = await session.execute(
        update(TotpFactor)
        .where(TotpFactor.user_id == user_id,
               or_(TotpFactor.last_step.is_(None), TotpFactor.last_step < step))
        .values(last_step=step))
    return bool(getattr(result, "rowcount", 0))


async def delete_totp(session: AsyncSession, user_id: str) -> bool:
    result = await session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def replace_recovery_codes(session: AsyncSession, user_id: str, digests: list[str],
                                 now: int) -> None:
    """The account's recovery codes are these, and only these: earlier ones stop working."""
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(RecoveryCode(id=new_handle(16), user_id=user_id, code_hash=code_hash,
                                 created_at=now, used_at=None) for code_hash in digests)


async def unused_recovery_codes(session: AsyncSession, user_id: str) -> list[RecoveryCode]:
    return list(await session.scalars(select(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))))


async def count_unused_recovery_codes(session: AsyncSession, user_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0)


async def use_recovery_code(session: AsyncSession, code_id: str, now: int) -> bool:
    """Use a recovery code up, once: False when another request used it first."""
    result = await session.execute(
        update(RecoveryCode).where(RecoveryCode.id == code_id, RecoveryCode.used_at.is_(None))
        .values(used_at=now))
    return bool(getattr(result, "rowcount", 0))


async def put_pending(session: AsyncSession, pending: PendingSignIn) -> None:
    """Wait for the second factor; replaces what this browser had waiting at the same place,
    and forgets what has expired."""
    await session.execute(delete(PendingSignIn).where(
        or_(PendingSignIn.id == pending.id, PendingSignIn.expires_at <= pending.created_at)))
    session.add(pending)


async def get_pending(session: AsyncSession, pending_id: str, now: int
                      ) -> PendingSignIn | None:
    row = await session.get(PendingSignIn, pending_id)
    return row if row is not None and row.expires_at > now else None


async def take_pending(session: AsyncSession, pending_id: str, user_id: str, now: int) -> bool:
    """End the wait, once: of two posts that both gave a right second factor, one signs in."""
    result = await session.execute(delete(PendingSignIn).where(
        PendingSignIn.id == pending_id, PendingSignIn.user_id == user_id,
        PendingSignIn.expires_at > now))
    return bool(getattr(result, "rowcount", 0))


async def drop_pending_of_user(session: AsyncSession, user_id: str) -> None:
    """Every first factor still waiting for this account's second (an operator reset them)."""
    await session.execute(delete(PendingSignIn).where(PendingSignIn.user_id == user_id))
