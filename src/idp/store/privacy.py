"""The customer's CCPA/CPRA choices (`privacy_choices`): read by anything that releases data
(`choices_of`; the profile withholds sensitive attributes while `limit_sensitive_use` is
on), set by the privacy-choices use cases, and read on the token paths inside the statement
that already loads the grant (`with_standing`), so the hot paths run no extra statement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, String, Table, case, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.functions import FunctionElement

from idp.protocol.privacy import NONE_CHOSEN, PrivacyChoices, Standing, standing_of
from idp.store.models import PrivacyChoice, Purpose
from idp.store.prepared import dialect_of

_CHOICES = cast(Table, PrivacyChoice.__table__)
_PURPOSES = cast(Table, Purpose.__table__)


class _SpaceJoined(FunctionElement[str]):
    """Values joined with spaces: string_agg on PostgreSQL, group_concat on SQLite. (Not
    `func.aggregate_strings`, whose separator is a bind rendered only at execution, which
    the hot paths' precompiled statements (`Prepared`) never do.)"""

    type = String()
    inherit_cache = True


@compiles(_SpaceJoined)
def _group_concat(element: _SpaceJoined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, ' ')"


@compiles(_SpaceJoined, "postgresql")
def _string_agg(element: _SpaceJoined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, ' ')"


# The ids of every sale-or-share purpose, space-separated. Purposes are few, and it is
# evaluated only while do-not-sell is on.
_SALE_OR_SHARE = (select(_SpaceJoined(_PURPOSES.c.id))
                  .where(_PURPOSES.c.sale_or_share).scalar_subquery())


def with_standing(statement: Select[*tuple[Any, ...]],
                  user_id: ColumnElement[Any] | InstrumentedAttribute[Any]
                  ) -> Select[*tuple[Any, ...]]:
    """`statement` (which reads the account `user_id` names) also reading the account's
    choices and, while do-not-sell is on, the sale-or-share purposes: `standing_from`."""
    return statement.add_columns(
        _CHOICES.c.do_not_sell_or_share.label("p_dns"),
        _CHOICES.c.limit_sensitive_use.label("p_lsu"),
        case((_CHOICES.c.do_not_sell_or_share, _SALE_OR_SHARE)).label("p_sale"),
    ).outerjoin(_CHOICES, _CHOICES.c.user_id == user_id)


def standing_from(values: Mapping[Any, Any]) -> Standing:
    return standing_of(values["p_dns"], values["p_lsu"], values["p_sale"])


async def standing_of_user(session: AsyncSession | AsyncConnection, user_id: str) -> Standing:
    """The account's choices and what they withhold, for a use case off the hot path."""
    choices = await choices_of(session, user_id)
    if not choices.do_not_sell_or_share:
        return Standing(choices)
    sale = await session.scalar(select(_SALE_OR_SHARE))
    return standing_of(True, choices.limit_sensitive_use, sale)


async def find_choices(session: AsyncSession, user_id: str, *, lock: bool = False
                       ) -> PrivacyChoice | None:
    return await session.get(PrivacyChoice, user_id, with_for_update=lock)


async def choices_of(session: AsyncSession | AsyncConnection, user_id: str) -> PrivacyChoices:
    """The account's two choices; neither made reads as both off."""
    row = (await session.execute(
        select(_CHOICES.c.do_not_sell_or_share, _CHOICES.c.limit_sensitive_use)
        .where(_CHOICES.c.user_id == user_id))).first()
    if row is None:
        return NONE_CHOSEN
    return PrivacyChoices(bool(row[0]), bool(row[1]))


async def lock_choices(session: AsyncSession, user_id: str, now: int) -> PrivacyChoice:
    """The account's row, created with both choices off if it had none, and locked for the
    caller's change (two first choices at once cannot both insert)."""
    insert = postgresql_insert if dialect_of(session) == "postgresql" else sqlite_insert
    await session.execute(insert(PrivacyChoice).values(
        user_id=user_id, do_not_sell_or_share=False, limit_sensitive_use=False,
        gpc_override=False, updated_at=now).on_conflict_do_nothing(index_elements=["user_id"]))
    row = await session.get(PrivacyChoice, user_id, with_for_update=True,
                            populate_existing=True)
    assert row is not None  # inserted above, or there already
    return row


async def count_choices(session: AsyncSession) -> tuple[int, int]:
    """How many accounts have do-not-sell, and limit-sensitive-use, on (aggregate only)."""
    row = (await session.execute(select(
        func.count().filter(_CHOICES.c.do_not_sell_or_share),
        func.count().filter(_CHOICES.c.limit_sensitive_use)))).one()
    return int(row[0] or 0), int(row[1] or 0)
