"""Device codes (RFC 8628), stored as digests. Approval and redemption are each one
conditional update, so a code is approved once and redeemed once however many requests race."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import DeviceCode

PENDING, APPROVED, DENIED = "pending", "approved", "denied"


def add_device_code(session: AsyncSession, row: DeviceCode) -> None:
    session.add(row)


async def pending_by_user_code(session: AsyncSession, user_code_hash: str, now: int
                               ) -> DeviceCode | None:
    """The live request a customer's entered code names; None if unknown, expired, or already
    approved or denied (one answer for all, so the page tells a guesser nothing more)."""
    return await session.scalar(select(DeviceCode).where(
        DeviceCode.user_code_hash == user_code_hash, DeviceCode.status == PENDING,
        DeviceCode.expires_at > now))


async def user_code_taken(session: AsyncSession, user_code_hash: str) -> bool:
    """Any row, live or not, has this user code (the column is unique until purged)."""
    return await session.scalar(select(DeviceCode.device_code_hash).where(
        DeviceCode.user_code_hash == user_code_hash)) is not None


async def lock_device_code(session: AsyncSession, device_code_hash: str) -> DeviceCode | None:
    """The row, locked for this unit of work: polls of one device code take turns."""
    return await session.scalar(select(DeviceCode).where(
        DeviceCode.device_code_hash == device_code_hash).with_for_update())


async def settle(session: AsyncSession, device_code_hash: str, now: int, status: str,
                 **approval: Any) -> bool:
    """pending → approved (with who approved, under which grant) or denied, if still pending
    and unexpired; False when another page or the clock got there first."""
    result = await session.execute(
        update(DeviceCode)
        .where(DeviceCode.device_code_hash == device_code_hash,
               DeviceCode.status == PENDING, DeviceCode.expires_at > now)
        .values(status=status, **approval)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


async def claim_approved(session: AsyncSession, device_code_hash: str, client_id: str,
                         now: int) -> DeviceCode | None:
    """Mark an approved, unexpired, unredeemed code redeemed; only one caller gets the row."""
    return (await session.execute(
        update(DeviceCode)
        .where(DeviceCode.device_code_hash == device_code_hash,
               DeviceCode.client_id == client_id, DeviceCode.status == APPROVED,
               DeviceCode.used_at.is_(None), DeviceCode.expires_at > now)
        .values(used_at=now)
        .returning(DeviceCode)
        .execution_options(synchronize_session=False))).scalar_one_or_none()


async def purge(session: AsyncSession, expired_before: int) -> int:
    """Codes that expired before `expired_before`: kept a while past expiry so a late poll is
    still answered expired_token rather than invalid_grant."""
    result = await session.execute(
        delete(DeviceCode).where(DeviceCode.expires_at <= expired_before))
    return int(getattr(result, "rowcount", 0) or 0)
