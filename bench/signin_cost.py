"""What one password sign-in costs the server, against what one argon2 verify costs.

    .venv/bin/python bench/signin_cost.py [--database postgres|sqlite] [--logins 60]

A returning customer (consent already given, no session in this browser) signs in the whole
way, over HTTP as a browser would: the authorization request, the login page, the password
post, the redirect with the code, and the app redeeming it. The server's and the database's
CPU over those sign-ins (read from /proc, bench/servers.py), per sign-in, is set against the
CPU of one argon2id verify at the settings' parameters, timed in this process. Sign-ins run
one at a time, so nothing else is in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from argon2 import PasswordHasher, Type  # noqa: E402
from bench.http_load import free_port  # noqa: E402
from bench.servers import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    CpuWindow,
    database_name,
    idp_server,
    sign_in,
    throwaway_database,
)

from idp.settings import Settings  # noqa: E402


def argon2_verify_ms(rounds: int = 20) -> float:
    """CPU ms of one verify at the configured parameters (what every sign-in must pay)."""
    settings = Settings(dev_mode=True)
    hasher = PasswordHasher(time_cost=settings.argon2_time_cost,
                            memory_cost=settings.argon2_memory_kib,
                            parallelism=settings.argon2_parallelism, type=Type.ID)
    stored = hasher.hash("a long enough passphrase")
    hasher.verify(stored, "a long enough passphrase")  # warm up the allocator
    started = time.process_time()
    for _ in range(rounds):
        hasher.verify(stored, "a long enough passphrase")
    return (time.process_time() - started) * 1000 / rounds


async def sign_in_each(metadata: dict[str, object], client: tuple[str, str],
                       accounts: list[tuple[str, str]]) -> None:
    for email, password in accounts:
        async with httpx.AsyncClient(timeout=30) as browser:  # a browser without a session
            await sign_in(browser, metadata, client, email, password)


def main(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="idp-signin-cost-"))
    with contextlib.ExitStack() as stack:
        if args.database == "postgres":
            url = stack.enter_context(throwaway_database(
                args.admin_url, f"idp_bench_signin_{secrets.token_hex(4)}"))
        else:
            url = f"sqlite+aiosqlite:///{workdir}/idp.db"
        server = stack.enter_context(idp_server(workdir / "idp", url, free_port(), 1))
        accounts = server.create_customers(args.logins)
        # The first sign-in of each gives the app its consent; the measured one is a return.
        asyncio.run(sign_in_each(server.metadata, server.code_client, accounts))
        window = CpuWindow(server.pids, database_name(url), args.database == "postgres")
        window.settle()
        window.start()
        asyncio.run(sign_in_each(server.metadata, server.code_client, accounts))
        server_ms, db_ms, _ = window.stop()
    verify_ms = argon2_verify_ms()
    per_login = (server_ms + db_ms) / len(accounts)
    print(f"{len(accounts)} returning sign-ins on {args.database}, one at a time")
    print(f"  server CPU per sign-in        {server_ms / len(accounts):7.1f} ms")
    print(f"  database CPU per sign-in      {db_ms / len(accounts):7.1f} ms")
    print(f"  one argon2id verify           {verify_ms:7.1f} ms")
    print(f"  sign-in / argon2 verify       {per_login / verify_ms:7.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--logins", type=int, default=60)
    sys.exit(main(parser.parse_args()))
