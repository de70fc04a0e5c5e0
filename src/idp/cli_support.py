"""Running one CLI action inside a context that is closed afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from idp.services.context import Context, build_context
from idp.settings import Settings


def run_with_context(settings: Settings, action: Callable[[Context], Awaitable[int]]) -> int:
    async def runner() -> int:
        ctx = build_context(settings)
        try:
            return await action(ctx)
        finally:
            await ctx.close()

    return asyncio.run(runner())
