"""`idp ledger ...`: verifying the consent ledger's hash chain, and one entry as a receipt."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from idp.cli.common import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    ledger_cmd = sub.add_parser("ledger", help="the consent ledger")
    lsub = ledger_cmd.add_subparsers(dest="ledger_command", required=True)
    lverify = lsub.add_parser("verify", help="check the hash chain; exit 1 on any problem")
    lverify.set_defaults(func=cmd_ledger_verify)
    lreceipt = lsub.add_parser("receipt", help="one entry as a consent receipt (JSON)")
    lreceipt.add_argument("entry_id")
    lreceipt.set_defaults(func=cmd_ledger_receipt)


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import ledger

    async def action(ctx: Context) -> int:
        count, problems = await ledger.verify(ctx)
        for problem in problems:
            where = f"entry {problem.seq}" + (f" ({problem.entry_id})" if problem.entry_id else "")
            print(f"{where}: {problem.reason}")
        print(f"{count} entries checked, {len(problems)} problem(s)")
        return 1 if problems else 0

    return run_with_context(settings, action)


def cmd_ledger_receipt(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import ledger
    from idp.services.consent.receipts import receipt

    async def action(ctx: Context) -> int:
        async with ctx.db.transaction() as session:
            entry = await ledger.get_entry(session, args.entry_id)
        if entry is None:
            print(f"idp: no ledger entry {args.entry_id}", file=sys.stderr)
            return 2
        print(json.dumps(receipt(ctx, entry), indent=2))
        return 0

    return run_with_context(settings, action)
