"""`idp purposes ...` and `idp ledger ...`: the operator's consent commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from idp.cli_support import run_with_context
from idp.services import InvalidInput
from idp.services.context import Context
from idp.settings import Settings


def add_consent_commands(sub: Any) -> None:
    purposes = sub.add_parser("purposes", help="why data is processed (consent purposes)")
    psub = purposes.add_subparsers(dest="purposes_command", required=True)
    pcreate = psub.add_parser("create")
    pcreate.add_argument("--id", required=True, dest="purpose_id")
    pcreate.add_argument("--title", required=True)
    pcreate.add_argument("--description", required=True)
    pcreate.add_argument("--category", action="append", required=True,
                         choices=["identity", "descriptive", "attitudinal", "behavioral"])
    pcreate.add_argument("--legal-basis", default="consent",
                         choices=["consent", "contract", "legitimate_interest"])
    pcreate.add_argument("--sale-or-share", action="store_true")
    pcreate.set_defaults(func=cmd_purposes_create)
    pupdate = psub.add_parser("update", help="change a purpose; raises its version")
    pupdate.add_argument("--id", required=True, dest="purpose_id")
    pupdate.add_argument("--title")
    pupdate.add_argument("--description")
    pupdate.add_argument("--not-material", action="store_true",
                         help="a wording fix: keep the version, nobody is asked again")
    pupdate.set_defaults(func=cmd_purposes_update)
    plist = psub.add_parser("list")
    plist.set_defaults(func=cmd_purposes_list)
    passign = psub.add_parser("assign", help="set the purposes a client asks for")
    passign.add_argument("--client", required=True, help=(
        "the client_id (an older one starting with '-' as --client=ID)"))
    passign.add_argument("--required", action="append", default=[])
    passign.add_argument("--optional", action="append", default=[])
    passign.set_defaults(func=cmd_purposes_assign)

    ledger_cmd = sub.add_parser("ledger", help="the consent ledger")
    lsub = ledger_cmd.add_subparsers(dest="ledger_command", required=True)
    lverify = lsub.add_parser("verify", help="check the hash chain; exit 1 on any problem")
    lverify.set_defaults(func=cmd_ledger_verify)
    lreceipt = lsub.add_parser("receipt", help="one entry as a consent receipt (JSON)")
    lreceipt.add_argument("entry_id")
    lreceipt.set_defaults(func=cmd_ledger_receipt)



def cmd_purposes_create(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        row = await purposes.create_purpose(
            ctx, purpose_id=args.purpose_id, title=args.title, description=args.description,
            data_categories=args.category, legal_basis=args.legal_basis,
            sale_or_share=args.sale_or_share)
        print(json.dumps({"id": row.id, "version": row.version}))
        return 0

    return run_admin(settings, action)


def cmd_purposes_update(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        row = await purposes.update_purpose(ctx, args.purpose_id, title=args.title,
                                            description=args.description,
                                            material=not args.not_material)
        print(json.dumps({"id": row.id, "version": row.version}))
        return 0

    return run_admin(settings, action)


def cmd_purposes_list(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        rows = await purposes.list_purposes(ctx)
        print(json.dumps([{"id": r.id, "title": r.title, "version": r.version,
                           "legal_basis": r.legal_basis, "sale_or_share": r.sale_or_share,
                           "data_categories": r.data_categories} for r in rows], indent=2))
        return 0

    return run_admin(settings, action)


def cmd_purposes_assign(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        chosen = {p: True for p in args.required} | {p: False for p in args.optional}
        await purposes.set_client_purposes(ctx, args.client, chosen)
        print(json.dumps({"client_id": args.client, "purposes": chosen}))
        return 0

    return run_admin(settings, action)


def run_admin(settings: Settings, action: Callable[[Context], Awaitable[int]]) -> int:
    async def guarded(ctx: Context) -> int:
        try:
            return await action(ctx)
        except InvalidInput as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 2

    return run_with_context(settings, guarded)


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


