"""The OpenID Provider under load over real HTTP: throughput, latency and CPU per request of each
hot endpoint, for the IdP, a bare-stack floor, and optionally a peer OpenID Provider.

    .venv/bin/python bench/oidc_load.py [--database sqlite|postgres] [--workers 2]
        [--duration 10] [--warmup 2] [--connections 32] [--threads 2] [--customers 200]
        [--rounds 1] [--pool-size N] [--peer node-oidc-provider] [--mixed] [--json FILE]
        [--keep]

wrk (Debian: apt-get install -y wrk) drives each scenario from its own process, with the Lua
response checks of bench/http_load.py: a non-2xx answer, or a 2xx body without what the
scenario expects, is an error, and the script exits non-zero if any scenario had one.

Scenarios, one after another, each for --duration seconds after --warmup seconds of unreported
load, against `idp serve --workers N` (and, with --peer, the same ones against the peer). With
--rounds R the servers take turns R times (idp's scenarios, the floor, the peer's; all of them
up throughout), so a change in the machine's speed falls on each alike, and the report gives
each scenario's median throughput and latency and its CPU per request over the rounds:

- discovery       GET the discovery document
- jwks            GET the `jwks_uri`
- client_credentials  POST the token endpoint, HTTP Basic client authentication
- introspection   POST the introspection endpoint with customers' access tokens, in turn
- userinfo        GET the UserInfo endpoint with customers' access tokens, in turn
- refresh         POST the token endpoint with rotating refresh tokens (OIDC, so each answer
                  carries an ID token and a new refresh token)
- floor           POST /token of bench/floor_app.py: uvicorn + FastAPI signing one ES256 JWT

The customers are real: the script creates --customers accounts, and each signs in once through
the authorization code flow with PKCE, over HTTP, as a browser would (authorize, login page,
consent page, code, token). Each wrk thread gets its own disjoint slice of their tokens. A
refresh token is single-use: the Lua keeps a queue per thread, takes one for each request and
puts back the one in the answer, so a token is never presented twice.

CPU per request is read from /proc/<pid>/stat (utime + stime) just before and just after each
measured window: the server's processes (uvicorn's supervisor and its workers), and apart from
them the database's. On SQLite the database is inside the server's processes. On PostgreSQL the
database's CPU is the postmaster, its auxiliary processes and the backends connected to the
benchmark's own database (other databases' backends are left out; the JSON also has the figure
over every postgres process). Backends come and go: every process sampled at either end is
counted, and one that exits inside the window is found again in the postmaster's cutime+cstime
(the CPU of the children it reaped), from which what it had used before the window is taken off.
wrk runs on the same cores and its CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.http_load import (  # noqa: E402
    Endpoint,
    Result,
    basic,
    free_port,
    lua_string,
    report_server_log,
    run_wrk,
)
from bench.servers import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    CpuWindow,
    children_cpu_ms,
    database_name,
    databases,
    floor_server,
    idp_server,
    libpq_url,
    machine_busy_ms,
    throwaway_database,
)
from bench.target import Target  # noqa: E402

PEERS = ("node-oidc-provider",)


# --- scenarios ----------------------------------------------------------------------------

# Lua for the scenarios that vary each request. `token_dir` holds one file per wrk thread,
# `<thread_number>.txt`, one token a line: each thread reads only its own.
LUA_TOKENS = r"""
local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c)) end))
end

function on_init()
  pool, head, tail = {}, 1, 1
  for line in io.lines(token_dir .. "/" .. thread_number .. ".txt") do
    if #line > 0 then pool[tail] = line; tail = tail + 1 end
  end
end
"""

LUA_BEARER = LUA_TOKENS + r"""
function request()
  head = head % (tail - 1) + 1
  wrk.headers["Authorization"] = "Bearer " .. pool[head]
  return wrk.format()
end
"""

LUA_INTROSPECT = LUA_TOKENS + r"""
function request()
  head = head % (tail - 1) + 1
  return wrk.format(nil, nil, nil, "token=" .. urlencode(pool[head]))
end
"""

# A queue per thread: a request takes the oldest refresh token, and the answer's new one goes
# to the back, so every customer of the thread's slice takes turns and none is presented twice.
# A 2xx without a new refresh token, or without an ID token, counts as unexpected. At the end
# the tokens still queued go back to the files for the next run (the measured one after the
# warm-up); those in flight when wrk stopped are lost.
LUA_REFRESH = LUA_TOKENS + r"""
function request()
  local token = pool[head]
  if token == nil then
    token = "the-pool-ran-dry"  -- the server refuses it: counted, never a reuse
  else
    pool[head] = nil
    head = head + 1
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. urlencode(token))
end

function accept(body)
  local token = body and string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if token == nil then return false end
  pool[tail] = token
  tail = tail + 1
  return string.find(body, '"id_token"', 1, true) ~= nil
end

function on_done(threads)
  for i, thread in ipairs(threads) do
    local queued, first, last = thread:get("pool"), thread:get("head"), thread:get("tail")
    local file = assert(io.open(token_dir .. "/" .. i .. ".txt", "w"))
    for j = first, last - 1 do
      if queued[j] ~= nil then file:write(queued[j], "\n") end
    end
    file:close()
  end
end
"""

SCENARIOS = ("discovery", "jwks", "client_credentials", "introspection", "userinfo", "refresh")
PEER_SCENARIOS = SCENARIOS[1:]


@dataclass
class Measurement:
    target: str
    scenario: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    unexpected: int
    socket_errors: int
    server_cpu_ms: float
    db_cpu_ms: float
    db_cpu_all_postgres_ms: float
    wrk_cpu_ms: float
    window_seconds: float
    # The rest of the machine's busy time in the window: other processes (a test suite, another
    # database), as a share of all cores. Above a few per cent the figures are disturbed.
    other_cpu_percent: float

    @property
    def errors(self) -> int:
        return self.non2xx + self.unexpected + self.socket_errors

    def per_request(self, ms: float) -> float:
        return ms / self.requests if self.requests else float("nan")

    @property
    def cpu_ms_per_request(self) -> float:
        return self.per_request(self.server_cpu_ms + self.db_cpu_ms)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(errors=self.errors,
                    server_cpu_ms_per_request=self.per_request(self.server_cpu_ms),
                    db_cpu_ms_per_request=self.per_request(self.db_cpu_ms),
                    cpu_ms_per_request=self.cpu_ms_per_request)
        return data


def split_url(url: str) -> tuple[str, str]:
    """(http://127.0.0.1:PORT, /path?query) of an endpoint of a server under test."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise SystemExit(f"bench: {url} is not on http://127.0.0.1")
    path = parts.path or "/"
    return f"http://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")


def write_slices(directory: Path, tokens: list[str], threads: int) -> None:
    """Thread i (from 1) gets tokens i-1, i-1+threads, ...: disjoint slices."""
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(threads):
        (directory / f"{i + 1}.txt").write_text("".join(t + "\n" for t in tokens[i::threads]))


def smallest_slice(directory: Path, threads: int) -> int:
    return min(len((directory / f"{i + 1}.txt").read_text().split()) for i in range(threads))


def endpoint_for(target: Target, scenario: str, token_dir: Path) -> Endpoint:
    meta = target.metadata
    form = ("Content-Type", "application/x-www-form-urlencoded")
    where = f'token_dir = {lua_string(str(token_dir))}\n'
    if scenario == "discovery":
        path = split_url(target.issuer.rstrip("/") + "/.well-known/openid-configuration")[1]
        return Endpoint(scenario, path, expect='"issuer"')
    if scenario == "jwks":
        return Endpoint(scenario, split_url(meta["jwks_uri"])[1], expect='"keys"')
    if scenario == "client_credentials":
        return Endpoint(scenario, split_url(meta["token_endpoint"])[1], method="POST",
                        body="grant_type=client_credentials",
                        headers=(("Authorization", basic(*target.cc_client)), form),
                        expect='"access_token"')
    if scenario == "introspection":
        return Endpoint(scenario, split_url(meta["introspection_endpoint"])[1], method="POST",
                        headers=(("Authorization", basic(*target.code_client)), form),
                        expect='"active":true', lua=where + LUA_INTROSPECT)
    if scenario == "userinfo":
        return Endpoint(scenario, split_url(meta["userinfo_endpoint"])[1],
                        expect='"sub"', lua=where + LUA_BEARER)
    if scenario == "refresh":
        return Endpoint(scenario, split_url(meta["token_endpoint"])[1], method="POST",
                        headers=(("Authorization", basic(*target.code_client)), form),
                        expect='"access_token"', lua=where + LUA_REFRESH)
    raise ValueError(scenario)


def measure(name: str, base: str, endpoint: Endpoint, window: CpuWindow, workdir: Path,
            args: argparse.Namespace, before_each: Callable[[], None] = lambda: None
            ) -> Measurement:
    if args.warmup > 0:
        before_each()
        run_wrk(endpoint, base, workdir, args, args.warmup)
    before_each()
    window.settle()
    window.start()
    busy, wrk_ms, started = machine_busy_ms(), children_cpu_ms(), time.monotonic()
    result: Result = run_wrk(endpoint, base, workdir, args, args.duration)
    busy, wrk_ms = machine_busy_ms() - busy, children_cpu_ms() - wrk_ms
    seconds = time.monotonic() - started
    server_ms, db_ms, all_ms = window.stop()
    other = busy - server_ms - db_ms - wrk_ms
    measured = Measurement(
        target=name, scenario=endpoint.name, requests=result.requests,
        requests_per_second=result.requests_per_second, p50_ms=result.p50_ms,
        p99_ms=result.p99_ms, max_ms=result.max_ms, non2xx=result.non2xx,
        unexpected=result.unexpected, socket_errors=result.socket_errors,
        server_cpu_ms=server_ms, db_cpu_ms=db_ms, db_cpu_all_postgres_ms=all_ms,
        wrk_cpu_ms=wrk_ms, window_seconds=seconds,
        other_cpu_percent=max(0.0, other) / (seconds * 1000 * (os.cpu_count() or 1)) * 100)
    print_row(measured, None)
    return measured


def run_round(target: Target, scenarios: tuple[str, ...], database: str | None,
               on_postgres: bool, workdir: Path, args: argparse.Namespace
               ) -> list[Measurement]:
    """Sign the customers in (a refresh run uses its tokens up), then measure each scenario
    against `target`."""
    started = time.monotonic()
    tokens = target.user_tokens(args.customers)
    print(f"{target.name}: {len(tokens)} customers signed in through the code flow in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    per_thread = args.connections // args.threads
    window = CpuWindow(target.server_pids, database, on_postgres)
    results = []
    for scenario in scenarios:
        token_dir = workdir / f"{target.name}-{scenario}"
        if scenario == "refresh":
            write_slices(token_dir, [t.refresh_token for t in tokens], args.threads)
        elif scenario in ("introspection", "userinfo"):
            write_slices(token_dir, [t.access_token for t in tokens], args.threads)
        endpoint = endpoint_for(target, scenario, token_dir)

        def enough(token_dir: Path = token_dir, scenario: str = scenario) -> None:
            if scenario == "refresh" and (left := smallest_slice(token_dir, args.threads)
                                          ) < 4 * per_thread:
                raise SystemExit(
                    f"bench: {target.name}: a wrk thread has {left} refresh tokens for "
                    f"{per_thread} connections; it needs 4 per connection: raise --customers")

        base = split_url(target.issuer)[0]
        results.append(measure(target.name, base, endpoint, window, workdir, args, enough))
    return results


def combined(measurements: list[Measurement]) -> list[Measurement]:
    """One row per target and scenario over its rounds: the median throughput, p50 and p99
    (a single run's tail moves with the machine), the CPU per request over all of the
    rounds' requests, every error counted."""
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.target, m.scenario), []).append(m)
    rows = []
    for runs in groups.values():
        if len(runs) == 1:
            rows.append(runs[0])
            continue
        rows.append(Measurement(
            target=runs[0].target, scenario=runs[0].scenario,
            requests=sum(m.requests for m in runs),
            requests_per_second=statistics.median(m.requests_per_second for m in runs),
            p50_ms=statistics.median(m.p50_ms for m in runs),
            p99_ms=statistics.median(m.p99_ms for m in runs),
            max_ms=max(m.max_ms for m in runs),
            non2xx=sum(m.non2xx for m in runs), unexpected=sum(m.unexpected for m in runs),
            socket_errors=sum(m.socket_errors for m in runs),
            server_cpu_ms=sum(m.server_cpu_ms for m in runs),
            db_cpu_ms=sum(m.db_cpu_ms for m in runs),
            db_cpu_all_postgres_ms=sum(m.db_cpu_all_postgres_ms for m in runs),
            wrk_cpu_ms=sum(m.wrk_cpu_ms for m in runs),
            window_seconds=sum(m.window_seconds for m in runs),
            other_cpu_percent=statistics.fmean(m.other_cpu_percent for m in runs)))
    return rows


# --- the report ---------------------------------------------------------------------------

HEADER = (f"{'target':<8} {'scenario':<19} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'srv ms/r':>8} {'db ms/r':>7} {'cpu ms/r':>8} {'x floor':>7} {'requests':>8} "
          f"{'errors':>6} {'other%':>6}")


def print_row(m: Measurement, floor: Measurement | None) -> None:
    ratio = (f"{m.cpu_ms_per_request / floor.cpu_ms_per_request:7.1f}"
             if floor is not None and floor.cpu_ms_per_request > 0 else f"{'':>7}")
    print(f"{m.target:<8} {m.scenario:<19} {m.requests_per_second:8.0f} {m.p50_ms:7.1f} "
          f"{m.p99_ms:7.1f} {m.per_request(m.server_cpu_ms):8.2f} "
          f"{m.per_request(m.db_cpu_ms):7.2f} {m.cpu_ms_per_request:8.2f} {ratio} "
          f"{m.requests:8d} {m.errors:6d} {m.other_cpu_percent:6.0f}", flush=True)


def ratio(m: Measurement, reference: Measurement) -> dict[str, Any]:
    """`m` over `reference`: throughput (>1 is better), p99 and CPU per request (<1 is)."""
    def over(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {"target": m.target, "scenario": m.scenario,
            "throughput": over(m.requests_per_second, reference.requests_per_second),
            "p99": over(m.p99_ms, reference.p99_ms),
            "cpu_per_request": over(m.cpu_ms_per_request, reference.cpu_ms_per_request)}


def print_report(results: list[Measurement], peer: str | None,
                 peer_ratios: list[dict[str, Any]], database: str) -> None:
    floor = next((m for m in results if m.target == "floor"), None)
    print("\n" + HEADER)
    for m in results:
        print_row(m, floor)
    print("srv ms/r, db ms/r: CPU ms per request of the server's processes, of the database's; "
          "cpu ms/r: both;\nx floor: cpu ms/r over the floor's; other%: CPU used by "
          "processes outside the benchmark, share of all cores" +
          (f"; peer: {peer}" if peer else ""))
    if peer_ratios:
        print(f"\nidp / {peer}: throughput (>1: idp serves more), p99 and CPU per request "
              "(<1: idp is faster, cheaper)")
        if database != "postgres":
            print(f"(the peer runs on PostgreSQL, idp on {database}: not like for like)")
        print(f"{'scenario':<19} {'throughput':>10} {'p99':>7} {'cpu/req':>8}")
        for r in peer_ratios:
            print(f"{r['scenario']:<19} {r['throughput']:10.2f} {r['p99']:7.2f} "
                  f"{r['cpu_per_request']:8.2f}")


# --- the run ------------------------------------------------------------------------------


def load_peer(name: str) -> Callable[..., Any]:
    """The peer's context manager, or a clear stop if bench/peers/ does not provide it."""
    try:
        module = importlib.import_module("bench.peers.node_oidc")
    except Exception as exc:
        raise SystemExit(
            f"bench: --peer {name} needs bench/peers/node_oidc.py with a context manager "
            f"node_oidc_provider(workdir, database_url, port, workers) yielding a Target; "
            f"importing it failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, "node_oidc_provider", None)
    if not callable(factory):
        raise SystemExit(f"bench: bench/peers/node_oidc.py has no node_oidc_provider(); "
                         f"--peer {name} cannot run")
    return factory  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not on PATH (Debian: apt-get install -y wrk)")
    if args.rounds < 1:
        raise SystemExit("bench: --rounds must be at least 1")
    if args.connections < args.threads:
        raise SystemExit("bench: --connections must be at least --threads")
    if args.pool_size is not None:
        if args.pool_size < 1:
            raise SystemExit("bench: --pool-size must be at least 1")
        # Both servers' pools alike: the servers started below inherit the environment.
        os.environ["IDP_DB_POOL_SIZE"] = os.environ["PG_POOL_SIZE"] = str(args.pool_size)
    peer_factory = load_peer(args.peer) if args.peer else None
    workdir = Path(tempfile.mkdtemp(prefix="idp-oidc-bench-"))
    run_id = secrets.token_hex(4)
    on_postgres = args.database == "postgres"
    results: list[Measurement] = []
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "note": "wrk, the servers and the database share "
                    "these CPUs; wrk's own CPU is not counted"},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    print(f"{os.cpu_count()} CPUs, shared by wrk, the server and the database (wrk's CPU is not "
          f"counted); wrk {args.threads} threads, {args.connections} connections; "
          f"{args.duration} s per scenario after {args.warmup} s of warm-up; servers: "
          f"{args.workers} workers"
          f"{'' if args.pool_size is None else f' with {args.pool_size} connections each'}; "
          f"idp on {args.database}; {args.customers} customers",
          flush=True)
    print(HEADER, flush=True)
    problems: list[str] = []
    peer_results: list[Measurement] = []
    try:
        with contextlib.ExitStack() as stack:
            if on_postgres:
                url = stack.enter_context(throwaway_database(args.admin_url,
                                                             f"idp_bench_{run_id}"))
            else:
                url = f"sqlite+aiosqlite:///{workdir}/idp.db"
            server = stack.enter_context(idp_server(workdir / "idp", url, free_port(),
                                                    args.workers, args.log_level))
            port = free_port()
            floor_pids = stack.enter_context(floor_server(workdir / "floor", port,
                                                          args.workers))
            floor = Endpoint("floor", "/token", method="POST", expect='"access_token"')
            peer: Target | None = None
            peer_database: str | None = None
            if peer_factory is not None:
                try:
                    # The peer creates its own database on the admin URL's server, and drops
                    # it.
                    existing = asyncio.run(databases(args.admin_url))
                    peer = relabel(stack.enter_context(peer_factory(
                        workdir / "peer", libpq_url(args.admin_url), free_port(),
                        args.workers)), "peer")
                    new = sorted(asyncio.run(databases(args.admin_url)) - existing)
                    if len(new) != 1:
                        print(f"bench: cannot tell the peer's database among {new}: its "
                              "database CPU is that of every postgres process", flush=True)
                    peer_database = new[0] if len(new) == 1 else None
                except (Exception, SystemExit) as exc:
                    problems.append(f"the peer {args.peer} failed: {type(exc).__name__}: "
                                    f"{exc}")
            # Round after round, each server in turn (all of them up, the others idle), so
            # a change in the machine's speed during the run falls on every one alike. The
            # peer goes first in every other round: a machine that speeds up (or slows down)
            # through a run then favours neither side (in runs where the peer always went
            # last, its refresh read 801, 857 and 952 a second, round by round).
            for number in range(args.rounds):
                if peer is not None and number % 2 == 1:
                    peer = run_peer_round(peer, peer_database, workdir, args, peer_results,
                                          problems)
                results += run_round(server.target(), SCENARIOS, database_name(url),
                                     on_postgres, workdir, args)
                results.append(measure("floor", f"http://127.0.0.1:{port}", floor,
                                       CpuWindow(floor_pids, None, False), workdir, args))
                if peer is not None and number % 2 == 0:
                    peer = run_peer_round(peer, peer_database, workdir, args, peer_results,
                                          problems)
        idp_log = server.log.read_text(errors="replace")
        results += peer_results

        every_run = results
        results, peer_results = combined(results), combined(peer_results)
        if args.rounds > 1:
            print(f"\n{args.rounds} rounds: below, each scenario's median throughput, p50 and "
                  "p99, and its CPU per request over all rounds", flush=True)
        ours = [m for m in results if m.target == "idp"]
        floor = next(m for m in results if m.target == "floor")
        ratios = [ratio(m, p) for m in ours for p in peer_results if p.scenario == m.scenario]
        print_report(results, args.peer, ratios, args.database)
        print("\nidp server log:", end="")
        report_server_log(idp_log)
        report.update(results=[m.as_json() for m in results],
                      runs=[m.as_json() for m in every_run],
                      ratios_to_floor=[ratio(m, floor) for m in results if m is not floor],
                      peer=args.peer, ratios_to_peer=ratios)
        problems += [f"{m.target} {m.scenario}: {m.errors} errors ({m.non2xx} non-2xx, "
                     f"{m.unexpected} unexpected bodies, {m.socket_errors} socket errors)"
                     for m in every_run if m.errors]

        if args.mixed:
            from bench import mixed_load

            report["mixed"] = mixed_load.run(
                database=args.database, admin_url=args.admin_url, workdir=workdir / "mixed",
                customers=args.customers, clients=args.mixed_clients,
                duration=args.mixed_duration, control_duration=args.mixed_control_duration,
                log_level=args.log_level)
            problems += [f"mixed {phase} {op}: {figures['errors']} errors"
                         for phase, data in report["mixed"]["phases"].items()
                         for op, figures in data["operations"].items() if figures["errors"]]
        report["problems"] = problems
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
            print(f"\nwrote {args.json}")
    finally:
        if args.keep:
            print(f"bench: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if problems else 0


def run_peer_round(peer: Target, database: str | None, workdir: Path,
                   args: argparse.Namespace, results: list[Measurement],
                   problems: list[str]) -> Target | None:
    """One round against the peer, its measurements added to `results`; None (no more
    rounds for it) when it failed, the failure added to `problems`."""
    try:
        results += run_round(peer, PEER_SCENARIOS, database, True, workdir, args)
    except (Exception, SystemExit) as exc:
        problems.append(f"the peer {args.peer} failed: {type(exc).__name__}: {exc}")
        return None
    return peer


def relabel(target: Target, name: str) -> Target:
    return Target(name=name, issuer=target.issuer, metadata=target.metadata,
                  cc_client=target.cc_client, code_client=target.code_client,
                  server_pids=target.server_pids, user_tokens=target.user_tokens)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL,
                        help="PostgreSQL: where to create (and drop) the throwaway databases")
    parser.add_argument("--workers", type=int, default=2, help="server processes, each server")
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per scenario")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each scenario this many times per server and report "
                             "the medians (a single run's p99 moves with the machine)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unreported load before each scenario (0: none)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="database connections per worker, the same for idp "
                             "(IDP_DB_POOL_SIZE; the --mixed run's server too) and the peer "
                             "(PG_POOL_SIZE); default: each server's own (10)")
    parser.add_argument("--customers", type=int, default=200,
                        help="customers signed in per server; their tokens feed the scenarios")
    parser.add_argument("--peer", choices=PEERS, default=None,
                        help="also run scenarios jwks..refresh against this peer, and compare")
    parser.add_argument("--mixed", action="store_true",
                        help="then run bench/mixed_load.py (one worker, on --database)")
    parser.add_argument("--mixed-duration", type=int, default=30,
                        help="measured seconds of the mixed run")
    parser.add_argument("--mixed-control-duration", type=int, default=10,
                        help="seconds of the mixed run's control phase without sign-ins (0: none)")
    parser.add_argument("--mixed-clients", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--log-level", default="WARNING", help="IDP_LOG_LEVEL of the server")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    from bench import oidc_load  # one copy of this module, however it was started

    sys.exit(oidc_load.main())
