"""`idp purposes ...`: why data is processed, in versions, and which clients ask for what."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli import consent_texts
from idp.cli.common import run_admin
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
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
    pcreate.add_argument("--retention-days", type=int,
                         help="purge values collected only for it this many days after")
    pcreate.set_defaults(func=cmd_purposes_create)
    pupdate = psub.add_parser("update", help="change a purpose; raises its version")
    pupdate.add_argument("--id", required=True, dest="purpose_id")
    pupdate.add_argument("--title")
    pupdate.add_argument("--description")
    pupdate.add_argument("--retention-days", type=int,
                         help="purge values collected only for it this many days after")
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
    consent_texts.register(psub)  # text, text-remove, texts: the words per language


def cmd_purposes_create(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        row = await purposes.create_purpose(
            ctx, purpose_id=args.purpose_id, title=args.title, description=args.description,
            data_categories=args.category, legal_basis=args.legal_basis,
            sale_or_share=args.sale_or_share, retention_days=args.retention_days)
        print(json.dumps({"id": row.id, "version": row.version}))
        return 0

    return run_admin(settings, action)


def cmd_purposes_update(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import purposes

    async def action(ctx: Context) -> int:
        row = await purposes.update_purpose(ctx, args.purpose_id, title=args.title,
                                            description=args.description,
                                            material=not args.not_material,
                                            retention_days=args.retention_days
                                            if args.retention_days is not None else ...)
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
