"""`idp upstreams ...`: the sign-in providers (Google, Apple, Facebook, any OIDC)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from idp.cli.common import run_with_context
from idp.services.context import Context
from idp.settings import Settings


def register(sub: Any) -> None:
    upstreams = sub.add_parser("upstreams", help="sign-in providers (Google, Apple, OIDC)")
    upsub = upstreams.add_subparsers(dest="upstreams_command", required=True)
    upadd = upsub.add_parser("add", help="add or replace a provider from a JSON file")
    upadd.add_argument("--config-file", required=True,
                       help="UpstreamConfig as JSON (alias, type, client_id, secrets, URLs)")
    upadd.set_defaults(func=cmd_upstreams_add)
    uplist = upsub.add_parser("list")
    uplist.set_defaults(func=cmd_upstreams_list)


def cmd_upstreams_add(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError as ConfigError

    from idp.federation.config import UpstreamConfig
    from idp.services.upstream.providers import parse_config_file, save_upstream

    try:
        with open(args.config_file, encoding="utf-8") as handle:
            config = UpstreamConfig.model_validate(parse_config_file(handle.read()))
    except (OSError, ValueError, ConfigError) as exc:
        # Never echo the file: it holds the upstream's secrets (requirement 13).
        print(f"idp: the upstream configuration is not valid: {type(exc).__name__}",
              file=sys.stderr)
        return 2

    async def action(ctx: Context) -> int:
        await save_upstream(ctx, config)
        print(json.dumps({"alias": config.alias, "type": config.type}))
        return 0

    return run_with_context(settings, action)


def cmd_upstreams_list(settings: Settings, args: argparse.Namespace) -> int:
    from idp.services.upstream.providers import enabled_upstreams

    async def action(ctx: Context) -> int:
        print(json.dumps(await enabled_upstreams(ctx), indent=2))
        return 0

    return run_with_context(settings, action)
