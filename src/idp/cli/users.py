"""`idp users ...`: creating customer accounts, and answering data-subject requests on an
operator's word: export (GDPR Art. 15 and 20; CCPA/CPRA right to know; security.md §7
PRIV-04) and erasure (GDPR Art. 17)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idp.cli.common import run_with_context
from idp.services import InvalidInput
from idp.services.accounts import admin
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="create and delete customer accounts")
    usub = users.add_subparsers(dest="users_command", required=True)
    ucreate = usub.add_parser("create")
    ucreate.add_argument("--email", required=True)
    pw = ucreate.add_mutually_exclusive_group(required=True)
    pw.add_argument("--password")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    ucreate.add_argument("--claim", action="append", default=[], help="profile claim name=value")
    ucreate.add_argument("--email-verified", action="store_true")
    ucreate.add_argument("--json", action="store_true")
    ucreate.set_defaults(func=cmd_users_create)
    udelete = usub.add_parser(
        "delete", help="delete an account and everything it holds (GDPR Art. 17)")
    udelete.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    udelete.add_argument("--yes", action="store_true",
                         help="confirm: the account cannot be restored")
    udelete.add_argument("--json", action="store_true")
    udelete.set_defaults(func=cmd_users_delete)
    ureset = usub.add_parser(
        "reset-second-factors", help="remove an account's authenticator app and recovery codes "
                                     "and sign it out everywhere (the customer lost them)")
    ureset.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    ureset.add_argument("--json", action="store_true")
    ureset.set_defaults(func=cmd_users_reset_second_factors)
    uexport = usub.add_parser(
        "export", help="print everything an account holds as JSON (GDPR Art. 15/20)")
    uexport.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    uexport.add_argument("--output", metavar="FILE", type=Path, default=None,
                         help="write to FILE (readable by its owner only) instead of stdout")
    uexport.set_defaults(func=cmd_users_export)


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    profile: dict[str, Any] = {}
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"idp: --claim takes name=value, got {item!r}", file=sys.stderr)
            return 2
        profile[name] = value
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")

    async def action(ctx: Context) -> int:
        try:
            user = await admin.create_user(ctx, email=args.email, password=password,
                                           profile=profile, email_verified=args.email_verified)
        except InvalidInput as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"sub": user.id, "email": user.email}) if args.json else user.id)
        return 0

    return run_with_context(settings, action)


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


def cmd_users_reset_second_factors(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services import NotFound
    from idp.services.accounts import erasure, operators

    async def action(ctx: Context) -> int:
        user_id = await erasure.find_account(ctx, args.account)
        try:
            if user_id is None:
                raise NotFound("no such account")
            result = await operators.reset_second_factors(ctx, user_id, actor="cli")
        except NotFound:
            print("idp: no such account", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"second factors of {user_id} reset: authenticator "
                  f"{'removed' if result['totp_removed'] else 'was not set up'}, "
                  f"{result['recovery_codes_removed']} recovery code(s) removed, "
                  f"{result['passkeys_removed']} passkey(s) removed, "
                  f"{result['sessions_ended']} session(s) ended")
        return 0

    return run_with_context(settings, action)


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
