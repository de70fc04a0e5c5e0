"""`idp privacy ...`: a customer's CCPA/CPRA choices on their request, and the brand's
aggregate consent figures (the admin API's /users/{id}/privacy-choices and
/consent/statistics, same use cases)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from typing import Any

from idp.cli.common import run_admin
from idp.protocol.privacy import SET_BY_OPERATOR
from idp.services.consent import privacy_choices, statistics
from idp.services.context import Context
from idp.settings import Settings

ON_OFF = {"on": True, "off": False}


def register(sub: Any) -> None:
    privacy = sub.add_parser("privacy", help="customers' privacy choices and aggregate "
                                             "consent figures")
    psub = privacy.add_subparsers(dest="privacy_command", required=True)
    choices = psub.add_parser(
        "choices", help="show an account's do-not-sell and limit-sensitive-use choices, or "
                        "set them on the customer's request (recorded as set by an operator)")
    choices.add_argument("account", metavar="EMAIL_OR_ID", help=(
        "the account's email address or id; an older id starting with '-' goes after '--'"))
    choices.add_argument("--do-not-sell-or-share", choices=sorted(ON_OFF), default=None)
    choices.add_argument("--limit-sensitive-use", choices=sorted(ON_OFF), default=None)
    choices.set_defaults(func=cmd_privacy_choices)
    stats = psub.add_parser(
        "statistics", help="consent counts per app, purpose and version (never a person; "
                           "counts below IDP_CONSENT_STATISTICS_MIN_COUNT are null)")
    stats.add_argument("--bucket", choices=statistics.BUCKETS, default="month")
    stats.add_argument("--since", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    stats.add_argument("--until", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD")
    stats.add_argument("--client-id", default=None)
    stats.add_argument("--purpose", default=None)
    stats.set_defaults(func=cmd_privacy_statistics)


def cmd_privacy_choices(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.accounts import erasure

    async def action(ctx: Context) -> int:
        user_id = await erasure.find_account(ctx, args.account)
        if user_id is None:
            print("idp: no such account", file=sys.stderr)
            return 2
        if args.do_not_sell_or_share is None and args.limit_sensitive_use is None:
            view = await privacy_choices.read_choices(ctx, user_id)
            print(json.dumps(asdict(view), indent=2))
            return 0
        changed = await privacy_choices.set_choices(
            ctx, user_id, do_not_sell_or_share=ON_OFF.get(args.do_not_sell_or_share or ""),
            limit_sensitive_use=ON_OFF.get(args.limit_sensitive_use or ""),
            set_by=SET_BY_OPERATOR, actor="cli")
        print(json.dumps({**asdict(changed.view), "change_id": changed.change_id}, indent=2))
        return 0

    return run_admin(settings, action)


def cmd_privacy_statistics(settings: Settings, args: argparse.Namespace) -> int:
    async def action(ctx: Context) -> int:
        figures = await statistics.consent_statistics(
            ctx, bucket=args.bucket, since=args.since, until=args.until,
            client_id=args.client_id, purpose_id=args.purpose)
        print(json.dumps(figures, indent=2))
        return 0

    return run_admin(settings, action)
