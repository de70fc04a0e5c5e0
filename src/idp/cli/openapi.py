"""`idp openapi`: the OpenAPI document of the app, as committed under `openapi/`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from idp.settings import Settings


def register(sub: Any) -> None:
    api = sub.add_parser("openapi", help="write the OpenAPI document (default: stdout)")
    api.add_argument("--output", default="-")
    api.set_defaults(func=cmd_openapi, needs_settings=False)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the app; independent of the settings' values."""
    from idp.main import create_app

    settings = Settings(dev_mode=True, database_url="sqlite+aiosqlite:///:memory:")
    return create_app(settings).openapi()


def cmd_openapi(settings: Settings | None, args: argparse.Namespace) -> int:
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0
