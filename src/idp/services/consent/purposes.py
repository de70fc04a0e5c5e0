"""Operator use cases for purposes: define, raise the version, attach to clients."""

from __future__ import annotations

import re
from types import EllipsisType
from typing import Any

from idp.protocol.consent import DATA_CATEGORIES, LEGAL_BASES
from idp.services import InvalidInput, NotFound
from idp.services.context import Context
from idp.store import audit
from idp.store import clients as client_store
from idp.store import purposes as purpose_store
from idp.store.models import Purpose

_PURPOSE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check(categories: list[str], legal_basis: str) -> None:
    bad = [c for c in categories if c not in DATA_CATEGORIES]
    if bad or not categories:
        raise InvalidInput(f"data categories must be among {', '.join(DATA_CATEGORIES)}")
    if legal_basis not in LEGAL_BASES:
        raise InvalidInput(f"legal basis must be one of {', '.join(LEGAL_BASES)}")


def view(row: Purpose) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "description": row.description,
            "data_categories": list(row.data_categories), "legal_basis": row.legal_basis,
            "sale_or_share": row.sale_or_share, "version": row.version,
            "retention_days": row.retention_days, "text_version": row.text_version,
            "created_at": row.created_at, "updated_at": row.updated_at}


def _check_retention(days: int | None) -> None:
    # Issue 16 item 6: values collected only for this purpose are purged after it.
    if days is not None and not 1 <= days <= 36_500:
        raise InvalidInput("retention days: from 1 to 36500, or none")


async def create_purpose(ctx: Context, *, purpose_id: str, title: str, description: str,
                         data_categories: list[str], legal_basis: str = "consent",
                         sale_or_share: bool = False, retention_days: int | None = None,
                         actor: str = "cli") -> Purpose:
    if not _PURPOSE_ID.match(purpose_id):
        raise InvalidInput("purpose id: lower-case letters, digits and _ (e.g. marketing_email)")
    if not title.strip() or not description.strip():
        raise InvalidInput("a purpose needs a title and a plain-words description")
    _check(data_categories, legal_basis)
    _check_retention(retention_days)
    now = ctx.now()
    async with ctx.db.transaction() as session:
        if await purpose_store.get_purpose(session, purpose_id) is not None:
            raise InvalidInput(f"purpose {purpose_id} exists; use `idp purposes update`")
        row = Purpose(id=purpose_id, title=title.strip(), description=description.strip(),
                      data_categories=data_categories, legal_basis=legal_basis,
                      sale_or_share=sale_or_share, version=1, created_at=now, updated_at=now,
                      retention_days=retention_days, text_version=1)
        session.add(row)
        audit.record(session, now, actor, "purpose.create", "purpose", purpose_id, None,
                     view(row))
    return row


async def update_purpose(ctx: Context, purpose_id: str, *, title: str | None = None,
                         description: str | None = None, data_categories: list[str] | None = None,
                         legal_basis: str | None = None, sale_or_share: bool | None = None,
                         material: bool = True, actor: str = "cli",
                         retention_days: int | EllipsisType | None = ...) -> Purpose:
    """Change a purpose. A material change raises its version, which makes every earlier
    answer stale: the next authorization of any app that uses it asks again."""
    async with ctx.db.transaction() as session:
        row = await purpose_store.get_purpose(session, purpose_id)
        if row is None:
            raise NotFound(f"no purpose {purpose_id}")
        before = view(row)
        words = (row.title, row.description)
        row.title = title.strip() if title else row.title
        row.description = description.strip() if description else row.description
        if (row.title, row.description) != words:
            row.text_version += 1  # the ledger names the words shown (issue 15 item 4)
        row.data_categories = data_categories or row.data_categories
        row.legal_basis = legal_basis or row.legal_basis
        if sale_or_share is not None:
            row.sale_or_share = sale_or_share
        if not isinstance(retention_days, EllipsisType):  # None: kept while granted
            _check_retention(retention_days)
            row.retention_days = retention_days
        _check(row.data_categories, row.legal_basis)
        if material:
            row.version += 1
        row.updated_at = ctx.now()
        audit.record(session, row.updated_at, actor, "purpose.update", "purpose", purpose_id,
                     before, view(row))
    return row


async def list_purposes(ctx: Context) -> list[Purpose]:
    async with ctx.db.transaction() as session:
        return await purpose_store.list_purposes(session)


async def set_client_purposes(ctx: Context, client_id: str, purposes: dict[str, bool], *,
                              actor: str = "cli") -> None:
    """`purposes` maps purpose id to required (True) or optional (False)."""
    async with ctx.db.transaction() as session:
        if await client_store.get_client(session, client_id) is None:
            raise InvalidInput(f"no client {client_id}")
        for purpose_id in purposes:
            if await purpose_store.get_purpose(session, purpose_id) is None:
                raise InvalidInput(f"no purpose {purpose_id}")
        await purpose_store.set_client_purposes(session, client_id, purposes)
        audit.record(session, ctx.now(), actor, "client.purposes", "client", client_id, None,
                     {"required": sorted(p for p, r in purposes.items() if r),
                      "optional": sorted(p for p, r in purposes.items() if not r)})
