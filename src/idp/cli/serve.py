"""`idp serve` and `idp migrate`: running the service and upgrading its schema."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from idp.cli.common import run_with_context
from idp.observability import logs, metrics
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings
from idp.store import migrate


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="migrate (unless IDP_MIGRATE_ON_START=false), "
                                         "create keys if needed, and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes sharing the port (default 1); size to the cores")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="upgrade the database schema and create signing "
                                         "keys if there are none")
    mig.add_argument("--revision", default="head")
    mig.set_defaults(func=cmd_migrate)


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    """The separate step of a deployment (a container's migration job): the schema, then
    the first signing keys, so the servers that follow only read."""
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database migrated to {args.revision}")
    if args.revision != "head":
        return 0

    async def keys(ctx: Context) -> int:
        created = await ctx.keys.ensure_keys()
        if created:
            print(f"generated signing keys: {', '.join(created)}")
        return 0

    return run_with_context(settings, keys)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    logs.configure(settings.log_level, settings.log_format)
    if settings.migrate_on_start:
        migrate.upgrade(settings.database_url)
    else:
        problem = migrate.schema_problem(settings.database_url)
        if problem:
            print(f"idp: {problem}", file=sys.stderr)
            return 1

    async def prepare(ctx: Context) -> int:
        created = await ctx.keys.ensure_keys()
        if created:
            print(f"generated signing keys: {', '.join(created)}")
        try:
            # Decrypt the keys now: a wrong IDP_KEY_ENCRYPTION_SECRET must stop the start,
            # not turn every token request into a 500 behind a healthy readiness check.
            await ctx.keys.ring()
        except RuntimeError as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 1
        if not await admin.list_clients(ctx):
            print(FIRST_RUN.format(issuer=settings.issuer))
        return 0

    if run_with_context(settings, prepare) != 0:
        return 1
    print(f"idp serving {settings.issuer} (discovery: "
          f"{settings.issuer}/.well-known/openid-configuration)", flush=True)
    options: dict[str, Any] = {
        "host": args.host, "port": args.port, "access_log": False, "proxy_headers": False,
        "timeout_graceful_shutdown": 10, "log_level": settings.log_level.lower(),
        # Our logging (idp.observability.logs), not uvicorn's own configuration.
        "log_config": None}
    if args.workers > 1 and settings.database_url.startswith("sqlite"):
        # SQLite has one writer: worker processes queue for its lock, and under load a
        # rotating refresh can wait seconds (README: Performance and scale).
        print("idp: warning: several workers on SQLite take turns at its single write lock; "
              "use PostgreSQL for more than one worker", file=sys.stderr)
    metrics_directory(args.workers)
    if args.workers > 1:
        # Each worker builds its own app, context and pool from the same environment.
        uvicorn.run("idp.main:app_from_environment", factory=True, workers=args.workers,
                    **options)
    else:
        # Only here: a supervisor of worker processes never builds the app itself (importing
        # it costs over a second of CPU, before the workers even start).
        from idp.main import create_app

        uvicorn.run(create_app(settings), **options)
    return 0


def metrics_directory(workers: int) -> Path | None:
    """PROMETHEUS_MULTIPROC_DIR, where each worker writes its metrics and /metrics, in
    whichever worker, adds them up. Several workers: the operator's, or a new one; emptied,
    since files of an earlier run would add its counts to this one's. One worker: the
    operator's only (made if missing, which prometheus_client would fail on at the first
    metric), and left as it is, since other processes may share it."""
    named = os.environ.get(metrics.MULTIPROCESS_DIR)
    if workers <= 1:
        if not named:
            return None
        Path(named).mkdir(parents=True, exist_ok=True)
        return Path(named)
    directory = Path(named) if named else Path(tempfile.mkdtemp(prefix="idp-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[metrics.MULTIPROCESS_DIR] = str(directory)
    return directory


FIRST_RUN = """
No clients yet. Create a first app and customer (in another terminal, same environment):

  .venv/bin/idp clients create --name "My app" --redirect-uri http://127.0.0.1:3000/callback \\
      --type public --application-type native --json
  .venv/bin/idp users create --email alice@example.com --password 'a long passphrase'

Then send the browser to {issuer}/authorize?... (authorization code + PKCE S256).
"""
