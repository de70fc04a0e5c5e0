"""`idp users delete` and `idp outbox failed`: erasing an account on an operator's word, and
seeing which notifications (to apps, or revocations at upstreams) have not got through."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from idp.cli_support import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def add_account_commands(sub: Any, users: Any) -> None:
    """`users` is the `idp users` subparsers, `sub` the top-level ones."""
    udelete = users.add_parser(
        "delete", help="delete an account and everything it holds (GDPR Art. 17)")
    udelete.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    udelete.add_argument("--yes", action="store_true",
                         help="confirm: the account cannot be restored")
    udelete.add_argument("--json", action="store_true")
    udelete.set_defaults(func=cmd_users_delete)

    outbox = sub.add_parser("outbox", help="notifications to apps and upstream providers")
    osub = outbox.add_subparsers(dest="outbox_command", required=True)
    failed = osub.add_parser("failed", help="messages abandoned or still failing")
    failed.add_argument("--kind", default=None,
                        help="only this kind (upstream_revoke, backchannel_logout, "
                             "security_event)")
    failed.add_argument("--json", action="store_true")
    failed.set_defaults(func=cmd_outbox_failed)


def cmd_users_delete(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.accounts import erasure

    if not args.yes:
        print("idp: deleting an account cannot be undone; add --yes to confirm",
              file=sys.stderr)
        return 2

    async def action(ctx: Context) -> int:
        user_id = await erasure.find_account(ctx, args.account)
        if user_id is None:
            print("idp: no such account", file=sys.stderr)
            return 2
        try:
            done = await erasure.delete_account(ctx, user_id, initiator="operator")
        except erasure.AccountNotFound:
            print("idp: no such account", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps({"sub": done.user_id, "deleted": True,
                              "apps_disconnected": done.apps_disconnected,
                              "sessions_ended": done.sessions_ended,
                              "upstream_revocations": done.upstream_revocations}))
        else:
            print(f"deleted {done.user_id}: {done.apps_disconnected} app(s) disconnected, "
                  f"{done.sessions_ended} session(s) ended, {done.upstream_revocations} "
                  "upstream revocation(s) queued for the running server's dispatcher")
        return 0

    return run_with_context(settings, action)


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
