"""Migration 0024 (issue 16): every value already in a profile gets its provenance: the
upstream that imported that very value, with the time it did, or `imported` (kept from before
sources were recorded) at the account's last update; downgrading removes the new tables."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from idp.store import migrate
from idp.store.db import create_engine
from tests.helpers import throwaway_database


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    with throwaway_database(tmp_path) as url:
        yield url


def run(url: str, statements: list[str], query: str | None = None) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
                return list(await connection.execute(text(query))) if query else []
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_existing_values_get_their_provenance(fresh_url: str) -> None:
    migrate.upgrade(fresh_url, "0023")
    run(fresh_url, [
        "INSERT INTO users (id, email, email_verified, profile, created_at, updated_at) VALUES "
        "('u1', 'a@example.com', true, '{\"name\": \"Alice Gmail\", \"nickname\": \"Al\", "
        "\"given_name\": \"Alicia\"}', 1, 500)",
        "INSERT INTO users (id, email, email_verified, profile, created_at, updated_at) VALUES "
        "('u2', 'b@example.com', false, '{}', 1, 1)",
        # Google imported the name (the same value) and a given name since changed.
        "INSERT INTO identities (id, user_id, alias, namespace, subject, email_verified, "
        "profile, status, created_at, last_login_at) VALUES ('i1', 'u1', 'google', "
        "'https://accounts.google.com', 's1', true, '{\"name\": {\"value\": \"Alice Gmail\", "
        "\"source\": \"google\", \"at\": 300}, \"given_name\": {\"value\": \"Alice\", "
        "\"source\": \"google\", \"at\": 300}}', 'active', 1, 1)",
    ])
    migrate.upgrade(fresh_url, "0024")
    rows = run(fresh_url, [], "SELECT user_id, name, source, source_id, purpose_bound, "
               "updated_at FROM profile_provenance ORDER BY user_id, name")
    assert [tuple(r) for r in rows] == [
        ("u1", "given_name", "imported", None, False, 500),
        ("u1", "name", "upstream", "google", False, 300),
        ("u1", "nickname", "imported", None, False, 500),
    ]
    assert run(fresh_url, [], "SELECT retention_days FROM purposes") == []
    migrate.downgrade(fresh_url, "0023")
    tables = run(fresh_url, [], "SELECT count(*) FROM users")
    assert tables[0][0] == 2
