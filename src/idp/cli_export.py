"""`idp users export`: an operator answering a data-subject access request (GDPR Art. 15 and
20; CCPA/CPRA right to know; security.md §7 PRIV-04) gets the same JSON document the customer
downloads from the account center."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idp.cli_support import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def add_export_command(users: Any) -> None:
    """`users` is the `idp users` subparsers."""
    uexport = users.add_parser(
        "export", help="print everything an account holds as JSON (GDPR Art. 15/20)")
    uexport.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    uexport.add_argument("--output", metavar="FILE", type=Path, default=None,
                         help="write to FILE (readable by its owner only) instead of stdout")
    uexport.set_defaults(func=cmd_users_export)


def cmd_users_export(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.accounts import erasure, export

    async def action(ctx: Context) -> int:
        user_id = await erasure.find_account(ctx, args.account)
        try:
            document = await export.export_account(ctx, user_id) if user_id else None
        except export.AccountNotFound:
            document = None
        if document is None:
            print("idp: no such account", file=sys.stderr)
            return 2
        body = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if args.output is None:
            sys.stdout.write(body)
        else:
            _write_private(args.output, body)
            print(f"wrote the export of {user_id} to {args.output}", file=sys.stderr)
        return 0

    return run_with_context(settings, action)


def _write_private(path: Path, body: str) -> None:
    """Personal data: the file is created for its owner alone (0600)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(body, encoding="utf-8")
