"""The admin audit log's writes: one row per operator change, added to the change's own unit
of work so the change and its record stand or fall together (any room may record; reading
the log is `idp.services.accounts.audit`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp.crypto.handles import new_handle
from idp.store.models import AdminEvent


def record(session: AsyncSession, now: int, actor: str, action: str, target_type: str,
           target_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    session.add(AdminEvent(id=new_handle(16), at=now, actor=actor, action=action,
                           target_type=target_type, target_id=target_id, before=before,
                           after=after))
