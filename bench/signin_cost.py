"""What one password sign-in costs the server, against what one argon2 verify costs.

    .venv/bin/python bench/signin_cost.py [--database postgres|sqlite] [--logins 60] [--profile]
                                          [--browser returning|new] [--against REV [--pairs 6]]

A returning customer (consent already given, no session in this browser) signs in the whole
way, over HTTP as a browser would: the authorization request, the login page, the password
post, the redirect with the code, and the app redeeming it. The browser is the one they used
before (`returning`, the default: it keeps our device cookie, as a signed-out browser does) or
one we have not seen (`new`: the sign-in also records an unrecognised device and mails a
notice). The server's and the database's CPU over those sign-ins (read from /proc,
bench/servers.py), per sign-in, is set against the CPU of one argon2id verify at the settings'
parameters, timed in this process. Sign-ins run one at a time, so nothing else is in the
window.

Per request, the server's hashing threads (named `idp-argon2`) are also counted on their own:
each request's CPU is then set against the argon2id work the server itself did for that
sign-in, in the same run and at the same moment. That ratio does not move with how fast the
machine happens to be (a shared machine's speed drifts by a quarter within minutes, and a
verify timed apart from the sign-ins drifts with it).

`--against REV` compares this checkout with a git revision in one run: both are served at once
(the revision from a worktree of it, on the same tools), each on a database of its own, and
their rounds of sign-ins alternate (`--pairs` of them, the first of each pair taken in turn),
so both meet the machine in the same moments. A change of a few per cent in the POST is
within the drift of separate runs minutes apart, and within that of a single pair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from argon2 import PasswordHasher, Type  # noqa: E402
from bench.http_load import free_port  # noqa: E402
from bench.profile_paths import py_spy, summarise  # noqa: E402
from bench.servers import (  # noqa: E402
    DEFAULT_ADMIN_URL,
    CpuWindow,
    database_name,
    idp_server,
    postgres_pids,
    sign_in,
    throwaway_database,
)

from idp.crypto.passwords import HASH_THREAD_NAME  # noqa: E402
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


def cpu_ns(pids: list[int], only: str | None = None) -> int:
    """CPU time of every thread of `pids` (or of those named `only`), in nanoseconds (the
    scheduler's own account, /proc/<pid>/task/<tid>/schedstat, far finer than the clock ticks
    of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    if only is not None and (task / "comm").read_text().strip() != only:
                        continue
                    total += int((task / "schedstat").read_text().split()[0])
    return total


class StepMeter:
    """Which request of the sign-in costs what: sign-ins run one at a time, so the CPU the
    server and the database use from the start of one request to the start of the next belongs
    to the first (its response, and whatever the server does after sending it). The server's
    hashing threads (idp.crypto.passwords names them) are counted apart as well: the argon2id
    work itself, measured in the same server at the same moment as the rest."""

    def __init__(self, server_pids: list[int], database_pids: list[int]) -> None:
        self.server_pids, self.database_pids = server_pids, database_pids
        self.totals: dict[str, list[float]] = {}
        self.current: tuple[str, int, int, int] | None = None

    def _close(self) -> None:
        if self.current is not None:
            step, server, database, hashing = self.current
            spent = self.totals.setdefault(step, [0.0, 0.0, 0.0, 0])
            spent[0] += (cpu_ns(self.server_pids) - server) / 1e6
            spent[1] += (cpu_ns(self.database_pids) - database) / 1e6
            spent[2] += (cpu_ns(self.server_pids, HASH_THREAD_NAME) - hashing) / 1e6
            spent[3] += 1
            self.current = None

    async def on_request(self, request: httpx.Request) -> None:
        self._close()
        # one row per route: the interaction's id in the path is different every time
        path = "/".join("{id}" if len(part) > 16 else part
                        for part in request.url.path.split("/"))
        step = f"{request.method} {path}"
        self.current = (step, cpu_ns(self.server_pids), cpu_ns(self.database_pids),
                        cpu_ns(self.server_pids, HASH_THREAD_NAME))

    def finish(self) -> None:
        self._close()


async def sign_in_each(metadata: dict[str, object], client: tuple[str, str],
                       accounts: list[tuple[str, str]], meter: StepMeter | None = None,
                       devices: dict[str, httpx.Cookies] | None = None) -> None:
    """Each account signs in from a browser without a session: with the device cookie kept
    in `devices` from an earlier round, if any (the round records them)."""
    hooks = {"request": [meter.on_request]} if meter is not None else {}
    for email, password in accounts:
        known = devices.get(email) if devices is not None else None
        async with httpx.AsyncClient(timeout=30, event_hooks=hooks, cookies=known) as browser:
            await sign_in(browser, metadata, client, email, password)
            if devices is not None:
                kept = httpx.Cookies()
                for cookie in browser.cookies.jar:
                    if cookie.name.endswith("idp_device"):
                        kept.jar.set_cookie(cookie)
                devices[email] = kept
    if meter is not None:
        meter.finish()


def print_steps(meter: StepMeter) -> tuple[float, float]:
    """The per-request table; returns the password POST's and the whole sign-in's ratios to
    the server's own hash (0 when no hash was seen)."""
    print(f"  {'request':<34} {'server':>7} {'db':>6} {'sum':>7} {'hash':>6} {'/ hash':>7}")
    whole, post = 0.0, 0.0
    hashing = sum(spent[2] for spent in meter.totals.values())
    count = max((spent[3] for spent in meter.totals.values()), default=1)
    for step, (server_step, db_step, hash_step, steps) in meter.totals.items():
        both = (server_step + db_step) / steps
        whole += both
        ratio = f"{both / (hash_step / steps):7.2f}" if hash_step > 0 else f"{'':>7}"
        if hash_step > 0 and step.startswith("POST"):
            post = both / (hash_step / steps)
        print(f"  {step[:34]:<34} {server_step / steps:7.2f} {db_step / steps:6.2f} "
              f"{both:7.2f} {hash_step / steps:6.2f} {ratio}")
    if hashing <= 0:
        return post, 0.0
    print(f"  {'the whole sign-in':<34} {'':>7} {'':>6} {whole:7.2f} "
          f"{hashing / count:6.2f} {whole / (hashing / count):7.2f}")
    return post, whole / (hashing / count)


@contextlib.contextmanager
def worktree(revision: str, place: Path) -> Iterator[Path]:
    """A checkout of `revision` at `place` (a git worktree of this repository), removed after."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",  # noqa: S603,S607
                    str(place), revision], check=True)
    try:
        yield place
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",  # noqa: S603,S607
                        str(place)], check=False)


def paired(args: argparse.Namespace) -> int:
    """This checkout against `args.against`, in alternating rounds of one run."""
    workdir = Path(tempfile.mkdtemp(prefix="idp-signin-cost-"))
    names = (f"{args.against} (before)", "this checkout")
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(worktree(args.against, workdir / "against"))
        servers = []
        for index, origin in enumerate((source, None)):
            if args.database == "postgres":
                url = stack.enter_context(throwaway_database(
                    args.admin_url, f"idp_bench_signin_{secrets.token_hex(4)}"))
            else:
                url = f"sqlite+aiosqlite:///{workdir}/idp{index}.db"
            servers.append(stack.enter_context(
                idp_server(workdir / f"idp{index}", url, free_port(), 1, source=origin)))
        rounds = []
        for server in servers:
            accounts = server.create_customers(args.logins)
            devices: dict[str, httpx.Cookies] | None = \
                {} if args.browser == "returning" else None
            # The first sign-in of each gives the app its consent; a second warms the server.
            for _ in range(2):
                asyncio.run(sign_in_each(server.metadata, server.code_client, accounts,
                                         devices=devices))
            meter = StepMeter(server.pids(), postgres_pids(database_name(server.database_url))
                              if args.database == "postgres" else [])
            rounds.append((server, accounts, devices, meter))
        for pair in range(args.pairs):
            order = rounds if pair % 2 == 0 else rounds[::-1]
            for server, accounts, devices, meter in order:
                asyncio.run(sign_in_each(server.metadata, server.code_client, accounts, meter,
                                         devices=devices))
        print(f"{args.pairs} alternating pairs of rounds of {args.logins} "
              f"{'returning' if args.browser == 'returning' else 'new-browser'} sign-ins on "
              f"{args.database}, one at a time (ms per request, as below)")
        results = []
        for name, (_, _, _, meter) in zip(names, rounds, strict=True):
            print(f"\n  {name}:")
            results.append(print_steps(meter))
        (post_a, whole_a), (post_b, whole_b) = results
        print(f"\n  password POST / its hash: {post_a:.3f} before, {post_b:.3f} now "
              f"({(post_b - post_a) / post_a:+.1%}); the whole sign-in {whole_a:.3f} / "
              f"{whole_b:.3f}")
    return 0


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
        devices: dict[str, httpx.Cookies] | None = {} if args.browser == "returning" else None
        asyncio.run(sign_in_each(server.metadata, server.code_client, accounts,
                                 devices=devices))
        window = CpuWindow(server.pids, database_name(url), args.database == "postgres")
        window.settle()
        recorder = None
        if args.profile:  # only the thread holding the GIL: argon2 releases it, waiting does not
            recorder = subprocess.Popen(  # noqa: S603 (fixed arguments)
                [py_spy(), "record", "--pid", str(max(server.pids())), "--gil", "--rate", "1000",
                 "--format", "raw", "--output", str(workdir / "signin.raw"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        window.start()
        asyncio.run(sign_in_each(server.metadata, server.code_client, accounts,
                                 devices=devices))
        server_ms, db_ms, _ = window.stop()
        window.settle()
        meter = StepMeter(server.pids(), postgres_pids(database_name(url))
                          if args.database == "postgres" else [])
        asyncio.run(sign_in_each(server.metadata, server.code_client, accounts, meter,
                                 devices=devices))
        if recorder is not None:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=30)
    verify_ms = argon2_verify_ms()
    per_login = (server_ms + db_ms) / len(accounts)
    print(f"{len(accounts)} returning sign-ins on {args.database}, one at a time, "
          f"from a {'known' if args.browser == 'returning' else 'new'} browser")
    print(f"  server CPU per sign-in        {server_ms / len(accounts):7.1f} ms")
    print(f"  database CPU per sign-in      {db_ms / len(accounts):7.1f} ms")
    print(f"  one argon2id verify           {verify_ms:7.1f} ms")
    print(f"  sign-in / argon2 verify       {per_login / verify_ms:7.2f}x")
    hashing = sum(spent[2] for spent in meter.totals.values())
    count = max((spent[3] for spent in meter.totals.values()), default=1)
    print(f"\n  per request of a second round (scheduler time of every thread, ms; `hash`: the\n"
          f"  server's argon2id threads, in the same server at the same moment; the verify\n"
          f"  timed here read {verify_ms:.1f} ms, the server's {hashing / count:.1f} ms):")
    print_steps(meter)
    if args.profile:
        print("\n".join(summarise(workdir / "signin.raw", args.top)))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--profile", action="store_true",
                        help="sample the worker with py-spy and print where the CPU went")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--browser", choices=["returning", "new"], default="returning",
                        help="the customer's browser keeps our device cookie, or is new to us")
    parser.add_argument("--against", metavar="REV",
                        help="compare with this git revision, in alternating rounds of one run")
    parser.add_argument("--pairs", type=int, default=6,
                        help="alternating pairs of rounds with --against (default 6)")
    arguments = parser.parse_args()
    sys.exit(paired(arguments) if arguments.against else main(arguments))
