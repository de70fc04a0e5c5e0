"""`idp keys ...`: listing and rotating the signing keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli.common import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="signing keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    klist = ksub.add_parser("list")
    klist.add_argument("--json", action="store_true")
    klist.set_defaults(func=cmd_keys_list)
    krot = ksub.add_parser("rotate", help="make new keys current; old ones stay published")
    krot.add_argument("--alg", action="append", choices=["RS256", "ES256"])
    krot.add_argument("--json", action="store_true")
    krot.set_defaults(func=cmd_keys_rotate)


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from idp.store import keys as key_store

    async def action(ctx: Context) -> int:
        async with ctx.db.transaction() as session:
            rows = await key_store.all_keys(session)
        data = [{"kid": r.kid, "alg": r.alg, "state": r.state, "created_at": r.created_at,
                 "retired_at": r.retired_at, "published_until": r.publish_until} for r in rows]
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for k in data:
                print(f"{k['kid']}  {k['alg']}  {k['state']}")
        return 0

    return run_with_context(settings, action)


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        created = await ctx.keys.rotate(tuple(args.alg) if args.alg else ("RS256", "ES256"))
        print(json.dumps({"active": created}) if args.json else "\n".join(created))
        return 0

    return run_with_context(settings, action)
