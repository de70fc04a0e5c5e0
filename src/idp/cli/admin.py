"""`idp admin bootstrap`: the first admin client, whose tokens drive the admin API;
`idp admin registration-token`: an initial access token for dynamic client registration."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli.common import run_admin
from idp.services.accounts import admin, registration
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
    token = asub.add_parser(
        "registration-token", help="issue an initial access token for dynamic client "
                                   "registration (IDP_REGISTRATION=token) and print it once")
    token.add_argument("--uses", type=int, default=1, help="clients it may register")
    token.add_argument("--expires-in", type=int, default=86_400, help="seconds from now")
    token.add_argument("--note", default="", help="who it is for")
    token.add_argument("--json", action="store_true")
    token.set_defaults(func=cmd_registration_token)


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


def cmd_registration_token(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        view, token = await registration.issue_initial_token(
            ctx, uses=args.uses, expires_in=args.expires_in, note=args.note)
        if args.json:
            print(json.dumps({"id": view.id, "token": token, "expires_at": view.expires_at,
                              "uses_left": view.uses_left}))
        else:
            print(f"token:      {token}   (shown once; keep it now)\n"
                  f"id:         {view.id}\n"
                  f"uses:       {view.uses_left}\n"
                  f"register:   POST {settings.issuer}/register  Authorization: Bearer <token>")
            if settings.registration != "token":
                print(f"note: IDP_REGISTRATION is {settings.registration}; this token is "
                      "needed only when it is 'token'")
        return 0

    return run_admin(settings, action)
