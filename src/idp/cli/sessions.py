"""`idp sessions end`: signing a customer out everywhere; apps are told."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from idp.cli.common import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    sessions = sub.add_parser("sessions", help="customer sessions")
    ssub = sessions.add_subparsers(dest="sessions_command", required=True)
    send = ssub.add_parser("end", help="sign a customer out everywhere (apps are told)")
    send.add_argument("--email", required=True)
    send.set_defaults(func=cmd_sessions_end)


def cmd_sessions_end(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.signin.sessions import end_user_sessions

    async def action(ctx: Context) -> int:
        ended = await end_user_sessions(ctx, args.email)
        if ended is None:
            print(f"idp: no account for {args.email}", file=sys.stderr)
            return 2
        print(f"ended {ended} session(s); apps are notified by back-channel logout")
        return 0

    return run_with_context(settings, action)
