"""Purposes and the purposes each client asks for."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp.protocol.consent import PurposeInfo
from idp.store.models import ClientPurpose, Purpose


def to_info(row: Purpose, required: bool = False) -> PurposeInfo:
    return PurposeInfo(row.id, row.title, row.description, tuple(row.data_categories),
                       row.legal_basis, row.sale_or_share, row.version, required)


async def get_purpose(session: AsyncSession, purpose_id: str) -> Purpose | None:
    return await session.get(Purpose, purpose_id)


async def list_purposes(session: AsyncSession) -> list[Purpose]:
    return list(await session.scalars(select(Purpose).order_by(Purpose.id)))


async def purposes_of_client(session: AsyncSession, client_id: str) -> tuple[PurposeInfo, ...]:
    rows = await session.execute(
        select(Purpose, ClientPurpose.required)
        .join(ClientPurpose, ClientPurpose.purpose_id == Purpose.id)
        .where(ClientPurpose.client_id == client_id)
        .order_by(ClientPurpose.required.desc(), Purpose.id)
    )
    return tuple(to_info(purpose, required) for purpose, required in rows)


async def set_client_purposes(session: AsyncSession, client_id: str,
                              purposes: dict[str, bool]) -> None:
    await session.execute(delete(ClientPurpose).where(ClientPurpose.client_id == client_id))
    for purpose_id, required in purposes.items():
        session.add(ClientPurpose(client_id=client_id, purpose_id=purpose_id, required=required))
