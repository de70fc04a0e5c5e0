"""Throughput and latency of the IdP over real HTTP, driven by wrk from a separate process.

Unlike bench/grants.py and bench/token_endpoint.py, which call the app in-process through
httpx's ASGI transport, this starts `idp serve` (uvicorn, one worker) and loads it with wrk, so
the numbers include the HTTP server and the socket but not the load generator's own cost.
Usage:

    .venv/bin/python bench/http_load.py [--database-url URL] [--duration 15] [--connections 16]
        [--threads 2] [--port PORT] [--warmup 2] [--log-level WARNING]

Measured, one after the other, each for --duration seconds:

- GET  /.well-known/openid-configuration  (static JSON: the framework's baseline)
- GET  the JWKS (the `jwks_uri` from discovery)
- POST /token, grant_type=client_credentials, HTTP Basic client authentication
- POST the introspection endpoint with one valid access token, Basic auth as the same client

Every response is checked in wrk's Lua `response` hook: a non-2xx status, or a 2xx body without
the expected marker (`access_token`, `"active":true`, ...), is counted and reported, because a
benchmark of error responses is worthless. The table shows requests/s, wrk's p50/p99 latency,
and those counts. The script exits non-zero if any response failed.

Without --database-url it uses a fresh SQLite file in a temporary directory. For PostgreSQL, pass
an empty, throwaway database (`postgresql+asyncpg://postgres@127.0.0.1/bench_tmp`): the script
migrates it and fills it. The server runs with IDP_DEV_MODE=true on http://127.0.0.1:PORT and
IDP_LOG_LEVEL=WARNING by default, which silences the per-request access log (`idp.access` logs
every request at INFO); pass --log-level INFO to measure with it on. Other IDP_ variables in the
environment (IDP_DB_POOL_SIZE, IDP_BACKGROUND_TASKS, ...) pass through to the server. wrk must be
on PATH (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCOPE = "orders:read"

# Appended to each endpoint's generated header (wrk.method/body/headers, `expect`, and the
# endpoint's own Lua). Each wrk thread has its own Lua state, so `done` (which runs in the main
# state) sums the per-thread counters through the thread objects kept by `setup`, the pattern
# from wrk's SCRIPTING doc. `setup` numbers the threads from 1 (`thread_number`, set before the
# thread's `init`), so an endpoint can give each thread its own inputs. The hooks an endpoint's
# Lua may define: `on_init()` in each thread, `accept(body)` for a 2xx body that passed `expect`
# (false counts it as unexpected), and `on_done(threads)` in the main state at the end; it may
# also define wrk's own `request()` to vary each request.
LUA_COMMON = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  responses = 0
  non2xx = 0
  unexpected = 0
  if on_init ~= nil then on_init() end
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif expect ~= nil and (body == nil or not string.find(body, expect, 1, true)) then
    unexpected = unexpected + 1
  elseif accept ~= nil and not accept(body) then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local seen, bad_status, bad_body = 0, 0, 0
  for _, thread in ipairs(threads) do
    seen = seen + thread:get("responses")
    bad_status = bad_status + thread:get("non2xx")
    bad_body = bad_body + thread:get("unexpected")
  end
  if on_done ~= nil then on_done(threads) end
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p99_us\": %d, " ..
    "\"max_us\": %d, \"responses\": %d, \"non2xx\": %d, \"unexpected\": %d, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, \"timeouts\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, seen, bad_status, bad_body, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    method: str = "GET"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    expect: str | None = None  # a substring every 2xx body must contain
    lua: str = ""  # the endpoint's own Lua: hooks of LUA_COMMON, or wrk's request()


@dataclass(frozen=True)
class Result:
    endpoint: Endpoint
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    non2xx: int
    unexpected: int
    socket_errors: int


def lua_string(value: str) -> str:
    if not value.isascii():
        raise ValueError(f"not ASCII: {value!r}")
    return json.dumps(value)  # for ASCII text, a JSON string is also a Lua string literal


def lua_script(endpoint: Endpoint) -> str:
    lines = [f"wrk.method = {lua_string(endpoint.method)}"]
    if endpoint.body is not None:
        lines.append(f"wrk.body = {lua_string(endpoint.body)}")
    for name, value in endpoint.headers:
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    lines.append(f"expect = {lua_string(endpoint.expect) if endpoint.expect else 'nil'}")
    return "\n".join(lines) + "\n" + endpoint.lua + "\n" + LUA_COMMON


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def idp_command() -> list[str]:
    local = ROOT / ".venv" / "bin" / "idp"
    if local.exists():
        return [str(local)]
    found = shutil.which("idp")
    if found is None:
        raise SystemExit("bench: cannot find the idp command (.venv/bin/idp or on PATH)")
    return [found]


def http(method: str, url: str, *, data: dict[str, str] | None = None,
         auth: tuple[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"bench: refusing to open {url}")
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (checked)
    if auth is not None:
        request.add_header("Authorization", basic(*auth))
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status: int = response.status
            return status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-encode each part before joining them.
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def create_client(env: dict[str, str]) -> tuple[str, str]:
    """Migrate, then register a confidential client_credentials client through the CLI."""
    idp = idp_command()
    # S603 here and below: fixed argument lists, no shell; the inputs are our own.
    subprocess.run([*idp, "migrate"], env=env, check=True,  # noqa: S603
                   stdout=subprocess.DEVNULL)
    # The CLI asks for a redirect URI even when authorization_code is not among the grant
    # types; this client never uses it.
    done = subprocess.run(  # noqa: S603
        [*idp, "clients", "create", "--name", "bench", "--grant-type", "client_credentials",
         "--scope", SCOPE, "--redirect-uri", "https://bench.invalid/unused", "--json"],
        env=env, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: idp clients create failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    return data["client_id"], data["client_secret"]


def wait_until_ready(server: subprocess.Popen[bytes], issuer: str, log: Path,
                     timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench: idp serve exited with {server.returncode}:\n"
                             f"{log.read_text()[-4000:]}")
        try:
            status, body = http("GET", f"{issuer}/.well-known/openid-configuration", timeout=2)
            if status == 200:
                metadata: dict[str, object] = json.loads(body)
                return metadata
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: the server did not answer within {timeout:.0f} s:\n"
                     f"{log.read_text()[-4000:]}")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully on SIGINT/SIGTERM
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_wrk(endpoint: Endpoint, base: str, workdir: Path, args: argparse.Namespace,
            duration: int) -> Result:
    script = workdir / f"{endpoint.name.replace(' ', '_').replace('/', '_')}.lua"
    script.write_text(lua_script(endpoint))
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{duration}s", "--timeout", "10s", "-s", str(script),
               f"{base}{endpoint.path}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({done.returncode}) for {endpoint.name}:\n"
                         f"{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("BENCH-RESULT "))
    seconds = data["duration_us"] / 1e6
    return Result(
        endpoint=endpoint, requests_per_second=data["requests"] / seconds,
        p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        requests=data["requests"], non2xx=data["non2xx"], unexpected=data["unexpected"],
        socket_errors=(data["connect_errors"] + data["read_errors"] + data["write_errors"]
                       + data["timeouts"]),
    )


def endpoints(metadata: dict[str, object], issuer: str, auth: tuple[str, str],
              token: str) -> list[Endpoint]:
    def path_of(key: str) -> str:
        url = str(metadata[key])
        if not url.startswith(issuer):
            raise SystemExit(f"bench: {key} {url} is not under the issuer {issuer}")
        return url.removeprefix(issuer)

    form = (("Authorization", basic(*auth)),
            ("Content-Type", "application/x-www-form-urlencoded"))
    return [
        Endpoint("discovery", "/.well-known/openid-configuration", expect='"issuer"'),
        Endpoint("jwks", path_of("jwks_uri"), expect='"keys"'),
        Endpoint("token client_credentials", path_of("token_endpoint"), method="POST",
                 body="grant_type=client_credentials", headers=form, expect='"access_token"'),
        Endpoint("introspection", path_of("introspection_endpoint"), method="POST",
                 body=urllib.parse.urlencode({"token": token}), headers=form,
                 expect='"active":true'),
    ]


def print_table(results: list[Result]) -> None:
    print(f"{'endpoint':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'requests':>9} {'non-2xx':>8} {'bad body':>8} {'sock err':>8}")
    for r in results:
        print(f"{r.endpoint.name:<26} {r.requests_per_second:9.0f} {r.p50_ms:8.1f} "
              f"{r.p99_ms:8.1f} {r.max_ms:8.1f} {r.requests:9d} {r.non2xx:8d} "
              f"{r.unexpected:8d} {r.socket_errors:8d}")


def report_server_log(text: str) -> None:
    """Summarise the server's output: tracebacks by exception, then the remaining lines."""
    lines = text.splitlines()
    exceptions: Counter[str] = Counter()
    other: list[str] = []
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback ("):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            if not line.startswith(("The above exception", "During handling", "+", "|")):
                exceptions[line.strip()] += 1
                in_traceback = False
        elif not in_traceback and line.strip():
            other.append(line)
    print(f"\nserver output: {len(lines)} lines, {sum(exceptions.values())} tracebacks")
    for exception, count in exceptions.most_common():
        print(f"  {count:6d} x {exception[:150]}")
    logged = Counter(line[:150] for line in other if not line.startswith("generated signing"))
    for line, count in logged.most_common(10):
        print(f"  {count:6d} x {line}")


def main(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is not on PATH (Debian: apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="idp-http-bench-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        port = args.port or free_port()
        issuer = f"http://127.0.0.1:{port}"
        url = args.database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
        env = {**os.environ, "IDP_DEV_MODE": "true", "IDP_ISSUER": issuer,
               "IDP_DATABASE_URL": url, "IDP_DATA_DIR": str(workdir / "data"),
               "IDP_LOG_LEVEL": args.log_level}
        auth = create_client(env)
        log = workdir / "server.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(  # noqa: S603
                [*idp_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env, stdout=sink, stderr=subprocess.STDOUT)
        metadata = wait_until_ready(server, issuer, log)

        status, body = http("POST", str(metadata["token_endpoint"]),
                            data={"grant_type": "client_credentials"}, auth=auth)
        if status != 200:
            raise SystemExit(f"bench: client_credentials failed ({status}): {body!r}")
        token = json.loads(body)["access_token"]
        status, body = http("POST", str(metadata["introspection_endpoint"]),
                            data={"token": token}, auth=auth)
        if status != 200 or json.loads(body).get("active") is not True:
            raise SystemExit(f"bench: introspection failed ({status}): {body!r}")

        database = url.split(":", 1)[0]
        print(f"database: {database}, wrk: {args.threads} threads, {args.connections} "
              f"connections, {args.duration} s per endpoint, server log level "
              f"{args.log_level}, {os.cpu_count()} CPUs shared by wrk and the server", flush=True)
        results = []
        for endpoint in endpoints(metadata, issuer, auth, token):
            if args.warmup > 0:
                run_wrk(endpoint, issuer, workdir, args, args.warmup)
            results.append(run_wrk(endpoint, issuer, workdir, args, args.duration))
        print_table(results)

        stop(server)
        report_server_log(log.read_text(errors="replace"))
        failed = [r for r in results if r.non2xx or r.unexpected or r.socket_errors]
        if failed:
            names = ", ".join(r.endpoint.name for r in failed)
            print(f"\nbench: failed or unexpected responses on: {names}", file=sys.stderr)
            return 1
        return 0
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url",
                        help="an empty, throwaway database (default: SQLite in a temp dir)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unreported load before each endpoint (0: none)")
    parser.add_argument("--log-level", default="WARNING",
                        help="IDP_LOG_LEVEL for the server; INFO turns the access log on")
    sys.exit(main(parser.parse_args()))
