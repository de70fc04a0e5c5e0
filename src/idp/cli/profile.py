"""`idp profile ...`: the profile schema (what each attribute is, which purposes it serves, who
may edit it) and, on a customer's request, one of their values set by an operator."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli.common import run_admin
from idp.protocol.consent import DATA_CATEGORIES
from idp.protocol.profile import TYPES
from idp.services.context import Context
from idp.settings import Settings


def _fields(parser: argparse.ArgumentParser, new: bool) -> None:
    parser.add_argument("--name", required=True)
    if new:
        parser.add_argument("--type", choices=[*TYPES, "address"],
                            help="fixed for a standard claim (leave it out)")
    parser.add_argument("--title")
    parser.add_argument("--description")
    parser.add_argument("--data-type", choices=DATA_CATEGORIES)
    parser.add_argument("--purpose", action="append", dest="purposes",
                        help="a purpose it may serve (repeat); replaces the list")
    parser.add_argument("--sensitive", action=argparse.BooleanOptionalAction,
                        help="CPRA sensitive personal information")
    parser.add_argument("--editable", action=argparse.BooleanOptionalAction,
                        dest="customer_editable", help="the customer may edit it")
    parser.add_argument("--scope", help="operator scope releasing it as a claim")
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--pattern")
    parser.add_argument("--minimum", type=float)
    parser.add_argument("--maximum", type=float)
    parser.add_argument("--value", action="append", dest="values",
                        help="an enum value (repeat)")


def register(sub: Any) -> None:
    profile = sub.add_parser("profile", help="the customer profile's schema and values")
    psub = profile.add_subparsers(dest="profile_command", required=True)
    plist = psub.add_parser("attributes", help="list the schema")
    plist.set_defaults(func=cmd_attributes)
    describe = psub.add_parser("describe", help="describe an attribute (or a standard claim)")
    _fields(describe, new=True)
    describe.set_defaults(func=cmd_describe)
    change = psub.add_parser("change", help="change an attribute's description")
    _fields(change, new=False)
    change.set_defaults(func=cmd_change)
    remove = psub.add_parser("remove", help="remove an attribute (a custom one with its values)")
    remove.add_argument("--name", required=True)
    remove.set_defaults(func=cmd_remove)
    put = psub.add_parser("set", help="set one value of a customer (null removes it)")
    put.add_argument("--user", required=True, help="the account's id or email address")
    put.add_argument("--name", required=True)
    put.add_argument("--json", required=True, dest="value",
                     help='the value as JSON, e.g. \'"gold"\', 42, true, null')
    put.set_defaults(func=cmd_set)


_NAMES = ("title", "description", "data_type", "purposes", "sensitive", "customer_editable",
          "scope", "max_length", "pattern", "minimum", "maximum", "values")


def _given(args: argparse.Namespace) -> dict[str, Any]:
    names = (*_NAMES, "type") if hasattr(args, "type") else _NAMES
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def cmd_attributes(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.profile import schema

    async def action(ctx: Context) -> int:
        print(json.dumps(await schema.list_attributes(ctx), indent=2))
        return 0

    return run_admin(settings, action)


def cmd_describe(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.profile import schema

    async def action(ctx: Context) -> int:
        print(json.dumps(await schema.describe_attribute(ctx, args.name, _given(args))))
        return 0

    return run_admin(settings, action)


def cmd_change(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.profile import schema

    async def action(ctx: Context) -> int:
        print(json.dumps(await schema.change_attribute(ctx, args.name, _given(args))))
        return 0

    return run_admin(settings, action)


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.profile import schema

    async def action(ctx: Context) -> int:
        removed = await schema.remove_attribute(ctx, args.name)
        print(json.dumps({"name": args.name, "values_removed": removed}))
        return 0

    return run_admin(settings, action)


def cmd_set(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services import InvalidInput
    from idp.services.accounts.erasure import find_account
    from idp.services.profile import values

    async def action(ctx: Context) -> int:
        try:
            value = json.loads(args.value)
        except ValueError:
            raise InvalidInput("--json: not valid JSON") from None
        user_id = await find_account(ctx, args.user)
        if user_id is None:
            raise InvalidInput(f"no account {args.user}")
        await values.set_by_operator(ctx, user_id, args.name, value)
        print(json.dumps({"user_id": user_id, "name": args.name, "set": value is not None}))
        return 0

    return run_admin(settings, action)
