"""`idp admin bootstrap`: the first admin client, whose tokens drive the admin API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli.common import run_admin
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings

ADMIN_SCOPES = ["admin:read", "admin:write"]


def register(sub: Any) -> None:
    group = sub.add_parser("admin", help="the admin API's clients")
    asub = group.add_subparsers(dest="admin_command", required=True)
    boot = asub.add_parser(
        "bootstrap", help="create an admin client (client_credentials, admin:read and "
                          "admin:write) and print its secret once")
    boot.add_argument("--name", default="Admin")
    boot.add_argument("--json", action="store_true")
    boot.set_defaults(func=cmd_bootstrap)


def cmd_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        new = await admin.create_client(
            ctx, name=args.name, redirect_uris=[], grant_types=["client_credentials"],
            scopes=ADMIN_SCOPES)
        if args.json:
            print(json.dumps({"client_id": new.client.client_id,
                              "client_secret": new.client_secret, "scopes": ADMIN_SCOPES}))
        else:
            print(f"client_id:     {new.client.client_id}\n"
                  f"client_secret: {new.client_secret}   (shown once; keep it now)\n"
                  f"token:  POST {settings.issuer}/token  grant_type=client_credentials "
                  f"scope=\"admin:read admin:write\"\n"
                  f"docs:   {settings.issuer}/docs  (Authorize: the client id and secret)")
        return 0

    return run_admin(settings, action)
