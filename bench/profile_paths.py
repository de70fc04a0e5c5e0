"""Where each hot path spends its CPU: the IdP under wrk load with one worker, sampled by
py-spy (only the thread holding the GIL, so waiting does not count), one scenario at a time.

    .venv/bin/pip install py-spy          # or: pip install -e ".[bench]"
    .venv/bin/python bench/profile_paths.py [--database postgres] [--duration 8]
        [--scenario refresh --scenario userinfo ...] [--top 25] [--keep-raw DIR]

For each scenario it prints the requests/s wrk saw and the functions with the largest share
of samples, inclusive (a frame counts once per sample however deep it recurs) and self.
Profiling slows the server: read the shares, not the throughput.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.http_load import free_port, run_wrk  # noqa: E402
from bench.oidc_load import (  # noqa: E402
    SCENARIOS,
    endpoint_for,
    split_url,
    write_slices,
)
from bench.servers import idp_server, throwaway_database  # noqa: E402

FRAME = re.compile(r"\s*\((?:.*?site-packages/|.*?src/)?(?P<where>[^)]*)\)")


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("bench: py-spy is not installed (.venv/bin/pip install py-spy)")
    return found


def summarise(raw: Path, top: int) -> list[str]:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue  # a frame name py-spy wrote with a line break in it
        samples = int(count)
        total += samples
        frames = [FRAME.sub(lambda m: f" ({m['where']})", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    lines = [f"  {total} samples; inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f[:130]}" for f, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"  {100 * n / total:5.1f}%  {f[:130]}" for f, n in own.most_common(top // 2)]
    return lines


def main(args: argparse.Namespace) -> int:
    spy = py_spy()
    workdir = Path(tempfile.mkdtemp(prefix="idp-profile-"))
    raw_dir = Path(args.keep_raw) if args.keep_raw else workdir
    raw_dir.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            if args.database == "postgres":
                url = stack.enter_context(throwaway_database(
                    args.admin_url, f"idp_bench_profile_{secrets.token_hex(4)}"))
            else:
                url = f"sqlite+aiosqlite:///{workdir}/idp.db"
            server = stack.enter_context(idp_server(workdir / "idp", url, free_port(), 1))
            target = server.target()
            tokens = target.user_tokens(args.customers)
            for scenario in args.scenario or [s for s in SCENARIOS if s != "discovery"]:
                token_dir = workdir / scenario
                if scenario == "refresh":
                    write_slices(token_dir, [t.refresh_token for t in tokens], args.threads)
                elif scenario in ("introspection", "userinfo"):
                    write_slices(token_dir, [t.access_token for t in tokens], args.threads)
                endpoint = endpoint_for(target, scenario, token_dir)
                base = split_url(target.issuer)[0]
                worker = max(server.pids())  # one worker: the newest process
                raw = raw_dir / f"{scenario}.raw"
                recorder = subprocess.Popen(  # noqa: S603 (fixed arguments)
                    [spy, "record", "--pid", str(worker), "--gil", "--rate", "250",
                     "--duration", str(args.duration), "--format", "raw", "--output", str(raw),
                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                result = run_wrk(endpoint, base, workdir, args, args.duration)
                recorder.wait(timeout=args.duration + 30)
                print(f"\n== {scenario}: {result.requests_per_second:.0f} req/s under the "
                      f"profiler, {result.non2xx + result.unexpected} bad responses", flush=True)
                print("\n".join(summarise(raw, args.top)), flush=True)
    finally:
        if not args.keep_raw:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--admin-url",
                        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep-raw", default=None, help="keep py-spy's raw stacks here")
    sys.exit(main(parser.parse_args()))
