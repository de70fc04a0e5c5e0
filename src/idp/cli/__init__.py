"""The `idp` command: serve, migrate, and operate clients, users and keys.

One module per command group; each registers its subcommands with `register(sub)`, and
`COMMAND_GROUPS` below is the one place that lists them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from idp.cli import (
    admin,
    clients,
    keys,
    ledger,
    openapi,
    outbox,
    privacy,
    profile,
    purposes,
    serve,
    sessions,
    upstreams,
    users,
)
from idp.cli.common import load_settings

# The order `idp --help` lists them in.
COMMAND_GROUPS = (serve, clients, users, privacy, purposes, profile, ledger, upstreams,
                  sessions, outbox, openapi, keys, admin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idp", description="serve, migrate, and operate clients, users and keys")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings() if getattr(args, "needs_settings", True) else None
    result: int = args.func(settings, args)
    return result
