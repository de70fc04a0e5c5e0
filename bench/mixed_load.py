"""Do password sign-ins starve the token endpoints? A mixed, closed-loop load on one server.

    .venv/bin/python bench/mixed_load.py [--database postgres|sqlite] [--duration 30]
        [--control-duration 10] [--clients 16] [--customers 200] [--json FILE] [--keep]

Starts `idp serve --workers 1` on a throwaway PostgreSQL database (or SQLite), creates
--customers accounts and signs each in once through the authorization code flow (as
bench/oidc_load.py does), then runs --clients simulated apps at once, each in a closed loop (the
next step starts when the last one ended) over its own share of the customers, so no refresh
token is ever presented twice. Each step picks a customer and:

- 70 %  refresh: the customer's current refresh token at the token endpoint; the answer's new
        refresh and access tokens replace the old ones (an answer without a refresh token or an
        ID token is an error)
- 20 %  UserInfo with the customer's current access token
- 10 %  a full password sign-in from a fresh browser: authorize, login page, consent (already
        given, so skipped) , code, token; the new tokens replace the old ones

Before that, a control phase of --control-duration seconds runs the same loop without sign-ins
(refresh and UserInfo in the same 70:20 proportion), so the refresh and UserInfo latencies with
and without argon2 on the same worker sit side by side. For each phase and operation: count,
operations per second, p50/p95/p99 latency of the whole operation (all its requests for a
sign-in), and errors; and the CPU of the server, of the database (read from /proc as in
bench/oidc_load.py) and of this load generator, which runs on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.http_load import free_port, report_server_log  # noqa: E402
from bench.servers import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    CpuWindow,
    IdpServer,
    SignInFailed,
    database_name,
    idp_server,
    machine_busy_ms,
    sign_in,
    sign_in_all,
    throwaway_database,
)

OPERATIONS = ("refresh", "userinfo", "sign-in")
MIXED = {"refresh": 0.7, "userinfo": 0.2, "sign-in": 0.1}
CONTROL = {"refresh": 0.7, "userinfo": 0.2}


@dataclass
class Customer:
    email: str
    password: str
    access_token: str
    refresh_token: str


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class Failed(Exception):
    pass


async def refresh(http: httpx.AsyncClient, server: IdpServer, customer: Customer) -> None:
    answer = await http.post(str(server.metadata["token_endpoint"]), auth=server.code_client,
                             data={"grant_type": "refresh_token",
                                   "refresh_token": customer.refresh_token})
    body = answer.json() if answer.status_code == 200 else {}
    if "refresh_token" in body:
        customer.refresh_token = body["refresh_token"]
        customer.access_token = body.get("access_token", customer.access_token)
    if answer.status_code != 200 or "id_token" not in body or "refresh_token" not in body:
        raise Failed(f"refresh {answer.status_code} {answer.text[:120]}")


async def userinfo(http: httpx.AsyncClient, server: IdpServer, customer: Customer) -> None:
    answer = await http.get(str(server.metadata["userinfo_endpoint"]),
                            headers={"Authorization": f"Bearer {customer.access_token}"})
    if answer.status_code != 200 or '"sub"' not in answer.text:
        raise Failed(f"userinfo {answer.status_code} {answer.text[:120]}")


async def password_sign_in(http: httpx.AsyncClient, server: IdpServer, customer: Customer
                           ) -> None:
    http.cookies.clear()  # a fresh browser: no session, so the password is asked for
    try:
        tokens = await sign_in(http, server.metadata, server.code_client, customer.email,
                               customer.password)
    finally:
        http.cookies.clear()
    customer.access_token, customer.refresh_token = tokens.access_token, tokens.refresh_token


STEPS = {"refresh": refresh, "userinfo": userinfo, "sign-in": password_sign_in}


async def simulate(server: IdpServer, customers: list[Customer], clients: int, seconds: float,
                   mix: dict[str, float], seed: int) -> tuple[dict[str, Tally], float]:
    tallies = {op: Tally() for op in mix}
    names, weights = list(mix), list(mix.values())
    deadline = time.monotonic() + seconds

    async def app(index: int) -> None:
        rng = random.Random(seed + index)  # noqa: S311 (a load mix, not a secret)
        mine = customers[index::clients]
        async with httpx.AsyncClient(timeout=30) as http:
            while time.monotonic() < deadline:
                op = rng.choices(names, weights)[0]
                started = time.perf_counter()
                try:
                    await STEPS[op](http, server, rng.choice(mine))
                except (Failed, SignInFailed, httpx.HTTPError, ValueError) as exc:
                    tallies[op].errors += 1
                    tallies[op].reasons[f"{type(exc).__name__}: {str(exc)[:100]}"] += 1
                tallies[op].latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(app(i) for i in range(clients)))
    return tallies, time.monotonic() - started


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def figures(tally: Tally, seconds: float) -> dict[str, Any]:
    ordered = sorted(tally.latencies)
    return {"count": len(ordered), "per_second": len(ordered) / seconds,
            "p50_ms": percentile(ordered, 50) * 1000, "p95_ms": percentile(ordered, 95) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000, "errors": tally.errors,
            "error_reasons": dict(tally.reasons.most_common(5))}


def own_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def run_phase(server: IdpServer, customers: list[Customer], window: CpuWindow, clients: int,
              seconds: int, mix: dict[str, float]) -> dict[str, Any]:
    window.start()
    generator, busy = own_cpu_ms(), machine_busy_ms()
    tallies, elapsed = asyncio.run(simulate(server, customers, clients, seconds, mix,
                                            seed=secrets.randbelow(1 << 30)))
    generator, busy = own_cpu_ms() - generator, machine_busy_ms() - busy
    server_ms, db_ms, _ = window.stop()
    other = max(0.0, busy - server_ms - db_ms - generator)
    operations = {op: figures(t, elapsed) for op, t in tallies.items()}
    total = sum(f["count"] for f in operations.values())
    return {"seconds": elapsed, "operations": operations, "cpu": {
        "server_ms": server_ms, "db_ms": db_ms, "load_generator_ms": generator,
        "server_cores": server_ms / 1000 / elapsed, "db_cores": db_ms / 1000 / elapsed,
        "load_generator_cores": generator / 1000 / elapsed,
        # Everything else the machine ran meanwhile (other processes), in cores.
        "other_cores": other / 1000 / elapsed,
        "cpu_ms_per_operation": (server_ms + db_ms) / total if total else float("nan")}}


def print_phases(phases: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'phase':<8} {'operation':<9} {'count':>7} {'per s':>7} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for phase, data in phases.items():
        for op, f in data["operations"].items():
            print(f"{phase:<8} {op:<9} {f['count']:7d} {f['per_second']:7.1f} "
                  f"{f['p50_ms']:7.1f} {f['p95_ms']:7.1f} {f['p99_ms']:7.1f} {f['errors']:6d}")
    print(f"\n{'phase':<8} {'seconds':>7} {'server cores':>12} {'db cores':>8} "
          f"{'loadgen cores':>13} {'other cores':>11} {'cpu ms/op':>9}")
    for phase, data in phases.items():
        c = data["cpu"]
        print(f"{phase:<8} {data['seconds']:7.1f} {c['server_cores']:12.2f} "
              f"{c['db_cores']:8.2f} {c['load_generator_cores']:13.2f} {c['other_cores']:11.2f} "
              f"{c['cpu_ms_per_operation']:9.2f}")
    print(f"cores: CPU seconds per second, of {os.cpu_count()}; other: processes outside the "
          "benchmark; cpu ms/op: server and database CPU over all operations")
    for phase, data in phases.items():
        for op, f in data["operations"].items():
            for reason, count in f["error_reasons"].items():
                print(f"  {phase} {op}: {count} x {reason}")


def run(*, database: str, admin_url: str, workdir: Path, customers: int, clients: int,
        duration: int, control_duration: int, log_level: str = "WARNING") -> dict[str, Any]:
    """The whole mixed run; prints its tables and returns every figure."""
    if customers < clients:
        raise SystemExit("bench: --customers must be at least --clients")
    workdir.mkdir(parents=True, exist_ok=True)
    on_postgres = database == "postgres"
    print(f"\nmixed load: idp serve --workers 1 on {database}, {clients} closed-loop clients "
          f"over {customers} customers; control {control_duration} s (refresh 70 : userinfo "
          f"20), then mixed {duration} s (refresh 70 %, userinfo 20 %, sign-in 10 %)",
          flush=True)
    phases: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        if on_postgres:
            url = stack.enter_context(throwaway_database(
                admin_url, f"idp_bench_{secrets.token_hex(4)}_mixed"))
        else:
            url = f"sqlite+aiosqlite:///{workdir}/idp.db"
        server = stack.enter_context(idp_server(workdir / "idp", url, free_port(), 1,
                                                log_level))
        started = time.monotonic()
        accounts = server.create_customers(customers)
        tokens = asyncio.run(sign_in_all(server.metadata, server.code_client, accounts))
        print(f"{customers} customers signed in in {time.monotonic() - started:.1f} s",
              flush=True)
        people = [Customer(email, password, t.access_token, t.refresh_token)
                  for (email, password), t in zip(accounts, tokens, strict=True)]
        window = CpuWindow(server.pids, database_name(url), on_postgres)
        if control_duration > 0:
            phases["control"] = run_phase(server, people, window, clients, control_duration,
                                          CONTROL)
        phases["mixed"] = run_phase(server, people, window, clients, duration, MIXED)
    print_phases(phases)
    print("\nmixed server log:", end="")
    report_server_log(server.log.read_text(errors="replace"))
    return {"database": database, "workers": 1, "clients": clients, "customers": customers,
            "mix": MIXED, "control_mix": CONTROL, "phases": phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL,
                        help="PostgreSQL: where to create (and drop) the throwaway database")
    parser.add_argument("--duration", type=int, default=30, help="seconds of the mixed phase")
    parser.add_argument("--control-duration", type=int, default=10,
                        help="seconds of the phase without sign-ins before it (0: none)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--log-level", default="WARNING", help="IDP_LOG_LEVEL of the server")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="idp-mixed-bench-"))
    try:
        report = run(database=args.database, admin_url=args.admin_url, workdir=workdir,
                     customers=args.customers, clients=args.clients, duration=args.duration,
                     control_duration=args.control_duration, log_level=args.log_level)
    finally:
        if args.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    errors = sum(f["errors"] for phase in report["phases"].values()
                 for f in phase["operations"].values())
    if errors:
        print(f"bench: {errors} operations failed", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
