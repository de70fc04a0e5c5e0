"""`idp outbox failed`: which notifications (to apps, or revocations at upstreams) have not
got through."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from idp.cli.common import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    outbox = sub.add_parser("outbox", help="notifications to apps and upstream providers")
    osub = outbox.add_subparsers(dest="outbox_command", required=True)
    failed = osub.add_parser("failed", help="messages abandoned or still failing")
    failed.add_argument("--kind", default=None,
                        help="only this kind (upstream_revoke, backchannel_logout, "
                             "security_event)")
    failed.add_argument("--json", action="store_true")
    failed.set_defaults(func=cmd_outbox_failed)


def cmd_outbox_failed(settings: Settings, args: argparse.Namespace) -> int:
    from idp.notifications.outbox import undelivered

    async def action(ctx: Context) -> int:
        async with ctx.db.transaction() as session:
            rows = await undelivered(session, args.kind)
        if args.json:
            print(json.dumps([asdict(row) for row in rows], indent=2))
        else:
            for row in rows:
                print(f"{row.id}  {row.kind:<18}  {row.recipient:<24}  {row.status:<9}  "
                      f"{row.attempts} attempt(s)  {row.last_error or ''}".rstrip())
        return 0

    return run_with_context(settings, action)
