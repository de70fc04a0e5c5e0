"""Alembic migrations on a fresh database of the suite's kind (a SQLite file, or a throwaway
PostgreSQL database): upgrade, downgrade to base, upgrade again; step by step both ways; and
the migrated schema matches the models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from idp.store import migrate
from idp.store.db import create_engine
from idp.store.models import Base
from tests.helpers import throwaway_database

MODEL_TABLES = frozenset(Base.metadata.tables)


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    with throwaway_database(tmp_path) as url:
        yield url


def on_connection(url: str, inspect_with: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(inspect_with)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def tables(url: str) -> set[str]:
    return set(on_connection(url, lambda c: inspect(c).get_table_names()))


def version(url: str) -> str | None:
    def current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    result: str | None = on_connection(url, current)
    return result


def revisions(url: str) -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(migrate.alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    assert tables(fresh_url) == set()
    head = revisions(fresh_url)[-1]

    migrate.upgrade(fresh_url)
    assert tables(fresh_url) == MODEL_TABLES | {"alembic_version"}
    assert version(fresh_url) == head

    migrate.downgrade(fresh_url, "base")
    assert tables(fresh_url) - {"alembic_version"} == set()
    assert version(fresh_url) is None

    migrate.upgrade(fresh_url)
    assert tables(fresh_url) == MODEL_TABLES | {"alembic_version"}
    assert version(fresh_url) == head


# Tables a revision drops on purpose; any other table that disappears on the way up is a bug.
DROPPED_ON_PURPOSE = {"0012": {"access_tokens"}}  # access tokens lost their rows


def test_each_revision_upgrades_and_downgrades_alone(fresh_url: str) -> None:
    chain = revisions(fresh_url)
    assert chain[0] == "0001"
    seen: list[set[str]] = [set()]
    for revision in chain:
        migrate.upgrade(fresh_url, revision)
        assert version(fresh_url) == revision
        seen.append(tables(fresh_url) - {"alembic_version"})
        dropped = seen[-2] - seen[-1]
        assert dropped == DROPPED_ON_PURPOSE.get(revision, set()), (
            f"{revision} dropped {sorted(dropped)} on the way up")
    for index in range(len(chain) - 1, -1, -1):
        target = chain[index - 1] if index else "base"
        migrate.downgrade(fresh_url, target)
        assert version(fresh_url) == (None if target == "base" else target)
        assert tables(fresh_url) - {"alembic_version"} == seen[index]


def test_migrated_schema_matches_the_models(fresh_url: str) -> None:
    """A model change without its migration shows up here, not in production."""
    migrate.upgrade(fresh_url)

    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    assert on_connection(fresh_url, differences) == []


def test_data_survives_a_no_op_upgrade(fresh_url: str) -> None:
    """Running `migrate` again on a current database changes nothing (every start runs it)."""
    migrate.upgrade(fresh_url)

    async def insert_and_count(insert: bool) -> int:
        engine = create_engine(fresh_url, pool_size=1)
        try:
            async with engine.begin() as connection:
                if insert:
                    await connection.execute(text(
                        "INSERT INTO users (id, email, email_verified, profile, created_at, "
                        "updated_at) VALUES ('u1', 'a@example.com', false, '{}', 1, 1)"))
                count = await connection.scalar(text("SELECT count(*) FROM users"))
                return int(count or 0)
        finally:
            await engine.dispose()

    assert asyncio.run(insert_and_count(True)) == 1
    migrate.upgrade(fresh_url)
    assert asyncio.run(insert_and_count(False)) == 1


def test_rows_referring_to_a_rebuilt_table_survive(fresh_url: str) -> None:
    """0004 alters `users`, which SQLite does by rebuilding the table; sessions and grants
    that refer to users must come through (no cascade on the old copy's drop)."""
    migrate.upgrade(fresh_url, "0003")

    async def run(statements: list[str], query: str) -> int:
        engine = create_engine(fresh_url, pool_size=1)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
                return int(await connection.scalar(text(query)) or 0)
        finally:
            await engine.dispose()

    asyncio.run(run([
        "INSERT INTO users (id, email, email_verified, profile, created_at, updated_at) "
        "VALUES ('u1', 'a@example.com', false, '{}', 1, 1)",
        "INSERT INTO browser_sessions (id_hash, sid, user_id, auth_time, amr, acr, created_at, "
        "expires_at) VALUES ('h1', 's1', 'u1', 1, '[]', 'a', 1, 9999999999)",
    ], "SELECT count(*) FROM browser_sessions"))
    migrate.upgrade(fresh_url)
    assert asyncio.run(run([], "SELECT count(*) FROM browser_sessions")) == 1
    assert asyncio.run(run([], "SELECT count(*) FROM users WHERE email IS NOT NULL")) == 1
