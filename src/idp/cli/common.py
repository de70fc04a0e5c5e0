"""What every command shares: the settings, and running one action inside a context that is
closed afterwards."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from idp.services import InvalidInput, NotFound
from idp.services.context import Context, build_context
from idp.settings import Settings

Action = Callable[[Context], Awaitable[int]]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise SystemExit(f"idp: invalid settings: {problems}") from None


def run_with_context(settings: Settings, action: Action) -> int:
    async def runner() -> int:
        ctx = build_context(settings)
        try:
            return await action(ctx)
        finally:
            await ctx.close()

    return asyncio.run(runner())


def run_admin(settings: Settings, action: Action) -> int:
    """An operator's use case: input it refuses exits 2 with the reason."""
    async def guarded(ctx: Context) -> int:
        try:
            return await action(ctx)
        except (InvalidInput, NotFound) as exc:
            print(f"idp: {exc}", file=sys.stderr)
            return 2

    return run_with_context(settings, guarded)
