"""Token-endpoint throughput: authorization codes redeemed per second, in-process.

Measures the hot path a brand sizes its fleet by (client authentication, atomic code claim,
two JWT signatures, one commit), without the HTTP server or network. Usage:

    .venv/bin/python bench/token_endpoint.py [--database-url URL] [--count 500] [--concurrency 8]

Codes are issued straight into the database first, so only the redemption is timed. Point
--database-url at an empty, throwaway database: the script migrates it and fills it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import pkce_pair

from idp.crypto.handles import digest, new_handle
from idp.main import create_app
from idp.services.accounts import admin
from idp.services.context import build_context
from idp.settings import Settings
from idp.store import migrate
from idp.store.models import AuthorizationCode, Grant

ISSUER = "https://idp.bench"


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(issuer=ISSUER, database_url=url, key_encryption_secret="b" * 40,
                        argon2_time_cost=1, argon2_memory_kib=1024)
    ctx = build_context(settings)
    await ctx.keys.ensure_keys()
    new = await admin.create_client(ctx, name="bench", redirect_uris=["https://app.bench/cb"])
    user = await admin.create_user(ctx, email=f"{new_handle(6)}@bench.example", password=None)
    verifier, challenge = pkce_pair()
    now = ctx.now()
    codes = [new_handle() for _ in range(args.count)]
    async with ctx.db.transaction() as session:
        grant = Grant(id=new_handle(16), user_id=user.id, client_id=new.client.client_id,
                      scopes=["openid", "profile"], claims=[], created_at=now, updated_at=now,
                      revoked_at=None)
        session.add(grant)
        await session.flush()
        for code in codes:
            session.add(AuthorizationCode(
                code_hash=digest(code), client_id=new.client.client_id, user_id=user.id,
                grant_id=grant.id, redirect_uri="https://app.bench/cb", code_challenge=challenge,
                nonce="n", scopes=["openid", "profile"], claims=None, sid="s", auth_time=now,
                amr=["pwd"], acr="a", created_at=now, expires_at=now + 3600, used_at=None))
    app = create_app(settings, ctx=ctx)
    auth = (new.client.client_id, new.client_secret or "")
    latencies: list[float] = []
    queue = list(codes)

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            code = queue.pop()
            started = time.perf_counter()
            response = await http.post("/token", auth=auth, data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": "https://app.bench/cb", "code_verifier": verifier})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    await ctx.close()
    latencies.sort()
    print(f"database: {url.split(':')[0]}  codes: {args.count}  concurrency: {args.concurrency}")
    print(f"throughput: {args.count / elapsed:.0f} redemptions/s")
    print(f"latency ms: p50 {statistics.median(latencies) * 1000:.1f}  "
          f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
