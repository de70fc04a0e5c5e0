"""Throughput of the hot paths brands size their fleets by, in-process (no HTTP server):
client_credentials grants, introspection, and rotating refreshes.

    .venv/bin/python bench/grants.py [--database-url URL] [--count 1000] [--concurrency 8]

Point --database-url at an empty, throwaway database: the script migrates it and fills it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from idp.main import create_app
from idp.services.accounts import admin
from idp.services.context import build_context
from idp.settings import Settings
from idp.store import migrate

ISSUER = "https://idp.bench"


async def measure(name: str, count: int, concurrency: int,
                  call: Callable[[int], Awaitable[None]]) -> None:
    latencies: list[float] = []
    queue = list(range(count))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(f"{name:<20} {count / elapsed:7.0f}/s   p50 {statistics.median(latencies) * 1000:6.1f} ms"
          f"   p95 {latencies[int(len(latencies) * 0.95)] * 1000:6.1f} ms")


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(issuer=ISSUER, database_url=url, key_encryption_secret="b" * 40,
                        background_tasks=False)
    ctx = build_context(settings)
    await ctx.keys.ensure_keys()
    backend = await admin.create_client(ctx, name="backend", redirect_uris=[],
                                        grant_types=["client_credentials"],
                                        scopes=["orders:read"])
    auth = (backend.client.client_id, backend.client_secret or "")
    app = create_app(settings, ctx=ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        tokens: list[str] = []

        async def client_credentials(_: int) -> None:
            response = await http.post("/token", auth=auth,
                                       data={"grant_type": "client_credentials"})
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])

        async def introspect(i: int) -> None:
            response = await http.post("/introspect", auth=auth,
                                       data={"token": tokens[i % len(tokens)]})
            assert response.json()["active"] is True

        print(f"database: {url.split(':')[0]}, concurrency {args.concurrency}")
        await measure("client_credentials", args.count, args.concurrency, client_credentials)
        await measure("introspection", args.count, args.concurrency, introspect)
    await ctx.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
