"""Running Alembic migrations from code (the CLI, `serve`, and the tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

_PACKAGE = Path(__file__).resolve().parent.parent


def _script_location() -> Path:
    # Installed wheels carry the migrations inside the package; a source checkout has them at
    # the top level.
    bundled = _PACKAGE / "_migrations"
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Blocking; call from a thread when an event loop is running."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def schema_problem(database_url: str) -> str | None:
    """Why this release cannot serve on the database as it stands, or None: its schema lacks
    this release's migrations. A schema newer than the release (another release migrated
    it, during a rolling upgrade) is served: migrations add before they take away. Blocking."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    head = script.get_current_head()
    current = asyncio.run(_current_revision(database_url))
    if current == head:
        return None
    if current is None:
        return f"the database has no schema yet: run `idp migrate` (to {head}) first"
    if current not in {revision.revision for revision in script.walk_revisions()}:
        return None  # a newer release's revision, see above
    return (f"the database schema is at {current}, this release needs {head}: run "
            "`idp migrate` first")


async def _current_revision(database_url: str) -> str | None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()
