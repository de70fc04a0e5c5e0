"""What the load benchmarks share: the servers under test and what they read of them.

bench/oidc_load.py (the wrk scenarios), bench/mixed_load.py (sign-ins against token traffic)
and bench/profile_paths.py (py-spy per scenario) all start servers and read their CPU here:

- the CPU of a server's processes and of its PostgreSQL backends, from /proc (`CpuWindow`, and
  the machine's busy time, `machine_busy_ms`)
- throwaway PostgreSQL databases (`throwaway_database`), created and dropped through an admin URL
- customers signing in through the authorization code flow with PKCE, over HTTP, as a browser
  would (`sign_in`, `sign_in_all`)
- `idp serve` on a fresh database with its clients and customers (`IdpServer`, `idp_server`),
  and the bare-stack floor app, bench/floor_app.py (`floor_server`)

Nothing here imports a benchmark script, so each script can import this without a circle.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from bench.http_load import create_client, http, idp_command, stop, wait_until_ready
from bench.target import Target, UserTokens

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
REDIRECT_URI = "https://bench.invalid/cb"
USER_SCOPE = "openid profile email offline_access"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")

# --- CPU from /proc -----------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime+stime, cutime+cstime) in clock ticks, or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def machine_busy_ms() -> float:
    """CPU time every core spent on anything but idling, since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) * 1000 / CLOCK_TICK


def children_cpu_ms() -> float:
    """CPU of this process's reaped children: wrk, once it has exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


Sample = dict[int, tuple[int, int]]  # pid -> (own ticks, reaped children's ticks)


def sample(pids: list[int]) -> Sample:
    taken: Sample = {}
    for pid in pids:
        stat = proc_stat(pid)
        if stat is not None:
            taken[pid] = (stat[1], stat[2])
    return taken


def cpu_ms(before: Sample, after: Sample) -> float:
    """CPU used between two samples by the processes in either. A process alive at both ends
    counts its own delta and that of the children it reaped; one born in between counts all it
    used; one that exited in between was reaped by its parent (in the set, for the servers and
    PostgreSQL here), whose children's time now holds all of it, so what it had used before the
    first sample is taken off."""
    ticks = 0
    for pid, (own, reaped) in after.items():
        start = before.get(pid, (0, 0))
        ticks += own - start[0] + reaped - start[1]
    for pid in before.keys() - after.keys():
        ticks -= before[pid][0] + before[pid][1]
    return ticks * 1000 / CLOCK_TICK


BACKEND = re.compile(r"^postgres: (?:.*?: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def postgres_processes() -> list[tuple[int, str | None]]:
    """Every PostgreSQL process: (pid, the database of a client backend, else None)."""
    found = []
    for pid in all_pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        match = BACKEND.match(command.decode(errors="replace").strip())
        found.append((pid, match.group(1) if match else None))
    return found


def postgres_pids(database: str | None) -> list[int]:
    """The postmaster, its shared processes, and the backends of `database` (None: all)."""
    return [pid for pid, db in postgres_processes()
            if database is None or db is None or db == database]


class CpuWindow:
    """CPU of a server's processes and of its database between `start` and `stop`."""

    def __init__(self, server_pids: Callable[[], list[int]], database: str | None,
                 on_postgres: bool) -> None:
        self.server_pids, self.database, self.on_postgres = server_pids, database, on_postgres

    def _take(self, extra: tuple[Sample, Sample, Sample] | None = None
              ) -> tuple[Sample, Sample, Sample]:
        server = self.server_pids()
        ours = postgres_pids(self.database) if self.on_postgres else []
        every = postgres_pids(None) if self.on_postgres else []
        if extra is not None:  # at the end, sample again whatever was there at the start
            server = sorted(set(server) | extra[0].keys())
            ours = sorted(set(ours) | extra[1].keys())
            every = sorted(set(every) | extra[2].keys())
        return sample(server), sample(ours), sample(every)

    def start(self) -> None:
        self.begin = self._take()

    def settle(self, timeout: float = 3.0) -> None:
        """Wait until the requests of the last run are through (the server and the database
        use under 5 % of a core for 100 ms), so they are not counted in the next window."""
        deadline = time.monotonic() + timeout
        before = self._take()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            after = self._take()
            if cpu_ms(before[0], after[0]) + cpu_ms(before[1], after[1]) < 5:
                return
            before = after

    def stop(self) -> tuple[float, float, float]:
        """(server ms, database ms, every postgres process ms)."""
        end = self._take(self.begin)
        return (cpu_ms(self.begin[0], end[0]), cpu_ms(self.begin[1], end[1]),
                cpu_ms(self.begin[2], end[2]))


# --- throwaway PostgreSQL databases -------------------------------------------------------


def libpq_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(libpq_url(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def databases(admin_url: str) -> set[str]:
    import asyncpg

    connection = await asyncpg.connect(libpq_url(admin_url))
    try:
        return {row[0] for row in await connection.fetch("SELECT datname FROM pg_database")}
    finally:
        await connection.close()


@contextlib.contextmanager
def throwaway_database(admin_url: str, name: str) -> Iterator[str]:
    """Create database `name` next to the admin URL's, yield its URL, drop it afterwards."""
    if not re.fullmatch(r"idp_bench_[a-z0-9_]+", name):
        raise ValueError(name)
    asyncio.run(_admin(admin_url, f"CREATE DATABASE {name}"))
    try:
        yield with_database(admin_url, name)
    finally:
        asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def database_name(url: str) -> str | None:
    if not url.startswith("postgresql"):
        return None
    return urllib.parse.urlsplit(url).path.lstrip("/")


# --- our server, and its customers signing in ---------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class SignInFailed(Exception):
    pass


FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(browser: httpx.AsyncClient, metadata: dict[str, Any],
                  client: tuple[str, str], email: str, password: str,
                  redirect_uri: str = REDIRECT_URI, scope: str = USER_SCOPE) -> UserTokens:
    """One customer signs in as a browser would: the authorization request, our login page, the
    consent page if the app has not been allowed yet, the redirect with the code, and the app
    redeeming it (client_secret_basic, PKCE S256). `browser` keeps the cookies."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(12)
    response = await browser.get(str(metadata["authorization_endpoint"]), params={
        "response_type": "code", "client_id": client[0], "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    for _ in range(12):
        if response.status_code in (302, 303):
            location = response.headers["location"]
            if location.startswith(redirect_uri):
                break
            response = await browser.get(urllib.parse.urljoin(str(response.url), location))
            continue
        page = response.text
        path = response.url.path
        if response.status_code != 200 or not path.endswith(("/login", "/consent")):
            raise SignInFailed(f"{response.status_code} at {path}: {page[:300]!r}")
        token = CSRF.search(page)
        action = FORM_ACTION.search(page)
        if token is None or action is None:
            raise SignInFailed(f"no form on {path}")
        form = ({"csrf_token": token.group(1), "email": email, "password": password}
                if path.endswith("/login") else
                {"csrf_token": token.group(1), "decision": "allow"})
        response = await browser.post(
            urllib.parse.urljoin(str(response.url), html.unescape(action.group(1))), data=form)
    else:
        raise SignInFailed("too many steps before the redirect to the app")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if query.get("state") != state or "code" not in query:
        raise SignInFailed(f"back at the app without a code: {location[:300]}")
    answer = await browser.post(str(metadata["token_endpoint"]), auth=client, data={
        "grant_type": "authorization_code", "code": query["code"],
        "redirect_uri": redirect_uri, "code_verifier": verifier})
    body = answer.json() if answer.headers.get("content-type", "").startswith(
        "application/json") else {}
    if answer.status_code != 200 or not all(
            k in body for k in ("access_token", "refresh_token", "id_token")):
        raise SignInFailed(f"token endpoint: {answer.status_code} {answer.text[:300]!r}")
    return UserTokens(body["access_token"], body["refresh_token"], body["id_token"])


async def sign_in_all(metadata: dict[str, Any], client: tuple[str, str],
                      accounts: list[tuple[str, str]], concurrency: int = 8) -> list[UserTokens]:
    """Each account signs in from its own browser, `concurrency` at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def one(email: str, password: str) -> UserTokens:
        async with limit, httpx.AsyncClient(timeout=60) as browser:
            return await sign_in(browser, metadata, client, email, password)

    return list(await asyncio.gather(*(one(e, p) for e, p in accounts)))


async def _create_users(env: dict[str, str], emails: list[str], password: str) -> None:
    # In-process, with the service function the CLI calls (one `idp users create` process per
    # customer would cost a second each); the hashing runs on the context's worker threads.
    from idp.services.accounts import admin
    from idp.services.context import build_context
    from idp.settings import Settings

    settings = Settings(issuer=env["IDP_ISSUER"], database_url=env["IDP_DATABASE_URL"],
                        data_dir=Path(env["IDP_DATA_DIR"]), dev_mode=True,
                        background_tasks=False)
    ctx = build_context(settings)
    try:
        await asyncio.gather(*(admin.create_user(ctx, email=email, password=password)
                               for email in emails))
    finally:
        await ctx.close()


class IdpServer:
    """`idp serve` on a fresh database, with a client_credentials client, a confidential web
    app for the customers, and the means to create customers and sign them in."""

    def __init__(self, workdir: Path, database_url: str, port: int, workers: int,
                 log_level: str = "WARNING", source: Path | None = None) -> None:
        self.workdir, self.workers = workdir, workers
        self.issuer = f"http://127.0.0.1:{port}"
        self.port = port
        self.database_url = database_url
        self.env = {**os.environ, "IDP_DEV_MODE": "true", "IDP_ISSUER": self.issuer,
                    "IDP_DATABASE_URL": database_url, "IDP_DATA_DIR": str(workdir / "data"),
                    "IDP_LOG_LEVEL": log_level}
        if source is not None:
            # Another checkout's code (its `src/` ahead of the installed one), same tools.
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(source / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.log = workdir / "server.log"
        self.password = "bench-" + secrets.token_urlsafe(12)
        self.process: subprocess.Popen[bytes] | None = None
        self.metadata: dict[str, Any] = {}

    def setup(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cc_client = create_client(self.env)  # also migrates
        done = subprocess.run(  # noqa: S603 (a fixed argument list, no shell)
            [*idp_command(), "clients", "create", "--name", "bench web app",
             "--redirect-uri", REDIRECT_URI, "--grant-type", "authorization_code",
             "--grant-type", "refresh_token", *(f"--scope={s}" for s in USER_SCOPE.split()),
             "--json"], env=self.env, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench: idp clients create failed:\n{done.stderr}")
        data = json.loads(done.stdout)
        self.code_client = (data["client_id"], data["client_secret"])

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: S603
                [*idp_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT)
        self.metadata = wait_until_ready(self.process, self.issuer, self.log)

    def pids(self) -> list[int]:
        return descendants(self.process.pid) if self.process is not None else []

    def create_customers(self, count: int) -> list[tuple[str, str]]:
        tag = secrets.token_hex(3)
        emails = [f"customer{i}-{tag}@bench.example.com" for i in range(count)]
        asyncio.run(_create_users(self.env, emails, self.password))
        return [(email, self.password) for email in emails]

    def user_tokens(self, count: int) -> list[UserTokens]:
        accounts = self.create_customers(count)
        return asyncio.run(sign_in_all(self.metadata, self.code_client, accounts))

    def target(self) -> Target:
        return Target(name="idp", issuer=self.issuer, metadata=self.metadata,
                      cc_client=self.cc_client, code_client=self.code_client,
                      server_pids=self.pids, user_tokens=self.user_tokens)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@contextlib.contextmanager
def idp_server(workdir: Path, database_url: str, port: int, workers: int = 2,
               log_level: str = "WARNING", source: Path | None = None) -> Iterator[IdpServer]:
    server = IdpServer(workdir, database_url, port, workers, log_level, source)
    try:
        server.setup()
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def floor_server(workdir: Path, port: int, workers: int) -> Iterator[Callable[[], list[int]]]:
    """bench/floor_app.py under uvicorn; yields its processes."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "floor.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "bench" / "floor_app.py"), "--port", str(port),
             "--workers", str(workers)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"bench: the floor app exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if http("POST", f"http://127.0.0.1:{port}/token", data={}, timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the floor app did not answer:\n{log.read_text()}")
            time.sleep(0.2)
        yield lambda: descendants(process.pid)
    finally:
        stop(process)
