"""The customer's language and the operators' consent texts per language."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp.store.models import BrowserSession, ConsentText, Interaction, User
from idp.store.prepared import Connection, Prepared

_INTERACTIONS = cast(Table, Interaction.__table__)
_SESSIONS = cast(Table, BrowserSession.__table__)
_USERS = cast(Table, User.__table__)

_REQUEST_OF = Prepared(select(_INTERACTIONS.c.request).where(
    _INTERACTIONS.c.id == bindparam("b_id"), _INTERACTIONS.c.expires_at > bindparam("b_now")))
_LOCALE_OF_SESSION = Prepared(
    select(_USERS.c.ui_locale)
    .join(_SESSIONS, _SESSIONS.c.user_id == _USERS.c.id)
    .where(_SESSIONS.c.id_hash == bindparam("b_id_hash"), _SESSIONS.c.ended_at.is_(None),
           _SESSIONS.c.expires_at > bindparam("b_now")))


async def interaction_ui_locales(connection: Connection, interaction_id: str, now: int
                                 ) -> list[str]:
    """The `ui_locales` of a pending authorization request (OIDC Core §3.1.2.1)."""
    if not interaction_id or len(interaction_id) > 64 or "\x00" in interaction_id:
        return []
    row = await _REQUEST_OF.first(connection, {"b_id": interaction_id, "b_now": now})
    request = row["request"] if row else None
    found = request.get("ui_locales") if isinstance(request, dict) else None
    return [str(tag) for tag in found] if isinstance(found, list) else []


async def session_user_locale(connection: Connection, session_hash: str, now: int
                              ) -> str | None:
    """The language the account of a live browser session picked, if it picked one."""
    row = await _LOCALE_OF_SESSION.first(connection, {"b_id_hash": session_hash, "b_now": now})
    return str(row["ui_locale"]) if row and row["ui_locale"] else None


async def set_user_locale(session: AsyncSession, user_id: str, locale: str | None) -> None:
    await session.execute(update(User).where(User.id == user_id).values(ui_locale=locale))


async def texts_in(session: AsyncSession, locales: Iterable[str]) -> list[ConsentText]:
    """Every operator text in these languages."""
    return list(await session.scalars(
        select(ConsentText).where(ConsentText.locale.in_(list(dict.fromkeys(locales))))))


async def all_texts(session: AsyncSession, kind: str | None = None, key: str | None = None
                    ) -> list[ConsentText]:
    query = select(ConsentText).order_by(ConsentText.kind, ConsentText.key, ConsentText.locale)
    if kind is not None:
        query = query.where(ConsentText.kind == kind)
    if key is not None:
        query = query.where(ConsentText.key == key)
    return list(await session.scalars(query))


async def get_text(session: AsyncSession, kind: str, key: str, locale: str
                   ) -> ConsentText | None:
    return await session.get(ConsentText, (kind, key, locale))
