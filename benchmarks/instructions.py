"""Instructions per request at several commits, counted by callgrind: a step's gain without noise.

Run:  .venv/bin/python benchmarks/instructions.py main HEAD [--rows widget forged] [--requests 300]

CPU time per request moves by a quarter from run to run on a machine shared with other work;
instruction counts do not (valgrind's callgrind counts them, whatever else runs). This serves
each commit in turn (as compare.py does) under callgrind with instrumentation off, sends each
row 50 requests to warm it up, then counts the instructions of `--requests` more, sent one after
another on one keep-alive connection. Needs valgrind (Debian's package).

Its requests send no user agent, as wrk's do: a widget request counts as a scanner's hit in the
funnel. `--user-agent` (alone: a desktop Firefox's) sends one, so that the widget's request
counts as a person's open, prefilled (the benchmark's link is older than the scanner window by
the time the service is up under callgrind).

What it does not see: time in the kernel (system calls, the loopback), and batching: requests
sent one at a time each make their own Redis round trip, where under load several share one.
Read it beside compare.py, not instead of it.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from compare import commits_served

WARM_UP = 50
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def send(url: str, count: int, user_agent: str | None = None) -> None:
    """`count` GETs of `url`, one after another on one connection; fails on a 5xx."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": user_agent} if user_agent else {}
    try:
        for _ in range(count):
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status >= 500:
                raise SystemExit(f"{url.split('?')[0]} answered {response.status}")
    finally:
        connection.close()


def wait_until_up(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            send(url, 1)
            return
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def control(*args: str) -> None:
    callgrind_control = shutil.which("callgrind_control") or "callgrind_control"
    subprocess.run([callgrind_control, *args], capture_output=True, check=True)


def total_instructions(out: Path) -> int:
    """The last dump's total: callgrind writes each dump to a file of its own."""
    last = max(out.parent.glob(f"{out.name}*"), key=lambda path: path.stat().st_mtime)
    for line in last.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no total in {last}")


def count(
    source: Path,
    env: dict[str, str],
    port: int,
    urls: dict[str, str],
    rows: list[str],
    n: int,
    user_agent: str | None = None,
) -> dict[str, float]:
    """Instructions per request of each row, for the source tree `source`."""
    out = source.parent / f"callgrind.{source.parent.name}"
    serve = [sys.executable, "-m", "prefill.cli", "serve", "--port", str(port)]
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    process = subprocess.Popen(
        [*valgrind, *serve],
        env=env | {"PYTHONPATH": str(source)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = str(process.pid)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health/ready", 300)
        counts = {}
        for row in rows:
            send(urls[row], WARM_UP, user_agent)
            control("--instr=on", pid)
            control("--zero", pid)
            send(urls[row], n, user_agent)
            control("--dump", pid)
            control("--instr=off", pid)
            counts[row] = total_instructions(out) / n
        return counts
    finally:
        process.terminate()
        process.wait(timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rows", nargs="+", default=["widget", "form", "forged", "health"])
    parser.add_argument(
        "--user-agent",
        nargs="?",
        const=BROWSER,
        help="send this User-Agent (alone: a browser's); without it, none, as wrk sends",
    )
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("needs valgrind: apt-get install valgrind")
    # Under callgrind the service runs some fifty times slower: no Redis timeout then.
    with commits_served(args.commits, PREFILL_REDIS_TIMEOUT_SECONDS="30") as served:
        sources, env, port, urls = served
        results = {
            commit: count(
                sources[commit], env, port, urls, args.rows, args.requests, args.user_agent
            )
            for commit in args.commits
        }
    print(f"instructions per request (thousands; x: gain over {args.commits[0]})")
    print(f"{'row':8} " + " ".join(f"{commit:>18}" for commit in args.commits))
    for row in args.rows:
        first = results[args.commits[0]][row]
        cells = [
            f"{results[c][row] / 1000:9.1f}k x{first / results[c][row]:.2f}" for c in args.commits
        ]
        print(f"{row:8} " + " ".join(f"{cell:>18}" for cell in cells))


if __name__ == "__main__":
    main()
