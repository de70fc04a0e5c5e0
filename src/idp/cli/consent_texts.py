"""`idp purposes text|texts|text-remove`: consent texts per language (issue 15 item 4): a
purpose's words in a language other than the default, and the operator's words for a scope
or a data category in place of the built-in ones."""

from __future__ import annotations

import argparse
import json
from typing import Any

from idp.cli.common import run_admin
from idp.services.context import Context
from idp.settings import Settings

KINDS = ["purpose", "scope", "category"]


def register(psub: Any) -> None:
    """Under `idp purposes`."""
    ptext = psub.add_parser("text", help=(
        "set the words of a purpose (title and description), a scope (description) or a "
        "data category (title) in one language"))
    ptext.add_argument("--kind", choices=KINDS, default="purpose")
    ptext.add_argument("--key", required=True, help="the purpose id, scope or category")
    ptext.add_argument("--locale", required=True, help="a language with a catalog, e.g. ar")
    ptext.add_argument("--title")
    ptext.add_argument("--description")
    ptext.set_defaults(func=cmd_text)
    premove = psub.add_parser("text-remove", help="show the built-in (or default) words again")
    premove.add_argument("--kind", choices=KINDS, default="purpose")
    premove.add_argument("--key", required=True)
    premove.add_argument("--locale", required=True)
    premove.set_defaults(func=cmd_text_remove)
    plist = psub.add_parser("texts", help="list the words set per language")
    plist.add_argument("--kind", choices=KINDS)
    plist.add_argument("--key")
    plist.set_defaults(func=cmd_texts)


def cmd_text(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import texts

    async def action(ctx: Context) -> int:
        row = await texts.set_text(ctx, args.kind, args.key, args.locale, title=args.title,
                                   description=args.description)
        print(json.dumps(texts.text_view(row), ensure_ascii=False))
        return 0

    return run_admin(settings, action)


def cmd_text_remove(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import texts

    async def action(ctx: Context) -> int:
        await texts.remove_text(ctx, args.kind, args.key, args.locale)
        print(json.dumps({"kind": args.kind, "key": args.key, "locale": args.locale,
                          "removed": True}))
        return 0

    return run_admin(settings, action)


def cmd_texts(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.consent import texts

    async def action(ctx: Context) -> int:
        print(json.dumps(await texts.list_texts(ctx, args.kind, args.key), indent=2,
                         ensure_ascii=False))
        return 0

    return run_admin(settings, action)
