"""The server's CPU time per request at several commits, measured interleaved: one step's gain.

Run:  .venv/bin/python benchmarks/compare.py main HEAD [--rounds 3] [--rows widget form card vcard]

On a machine shared with other work, req/s moves with everyone else's load, and two runs of
throughput.py minutes apart cannot tell a 10% step from noise. This serves each commit in turn
(a `git archive` of it, on one Redis with the examples loaded, as throughput.py sets it up),
drives each row with wrk for a few seconds, and reads the server's CPU time from /proc; the
rounds alternate the commits, and the median per commit and row is printed with its gain over
the commit before it; and the same for wrk's p99 latency.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from throughput import cpu_seconds, load_examples, service_env, start, stop, wrk

from prefill.storage import EmbeddedRedis, free_tcp_port

REPO = Path(__file__).resolve().parents[1]
Samples = dict[tuple[str, str], list[float]]
"""CPU ms per request, per (commit, row), one per round."""


def snapshot(commit: str, folder: Path) -> Path:
    """The commit's source tree, for PYTHONPATH (ahead of the editable install)."""
    tree = folder / commit.replace("/", "_")
    tree.mkdir()
    git = shutil.which("git") or "git"
    archive = subprocess.run([git, "-C", str(REPO), "archive", commit], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"git archive {commit}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree / "src"


Served = tuple[dict[str, Path], dict[str, str], int, dict[str, str]]
"""Each commit's source tree, the service's environment, its port and each row's URL."""


@contextlib.contextmanager
def commits_served(commits: list[str], **env_overrides: str) -> Iterator[Served]:
    """The commits' source trees and one Redis with the examples loaded, for a service to be
    started on the port given, one commit at a time."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = {commit: snapshot(commit, folder) for commit in commits}
        server = EmbeddedRedis(folder / "redis", port=free_tcp_port())
        server.start()
        try:
            port = free_tcp_port()
            base = f"http://127.0.0.1:{port}"
            env = service_env(server.url, base, folder) | env_overrides
            yield sources, env, port, row_urls(base, load_examples(env))
        finally:
            server.stop()


def row_urls(base: str, links: dict[str, str]) -> dict[str, str]:
    form = links["form_url"]
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(form).query)["t"][0]
    form_id = urllib.parse.urlsplit(form).path.rsplit("/", 1)[1]
    return {
        "widget": f"{base}/api/v1/forms/{form_id}/prefill?t={token}",
        "form": form,
        "card": links["card_url"],
        "vcard": links["vcard_url"],
        "forged": form[:-3] + ("xyz" if not form.endswith("xyz") else "abc"),
        "health": f"{base}/health/live",
    }


def cpu_ms_and_p99(url: str, seconds: int, server: subprocess.Popen[bytes]) -> tuple[float, float]:
    """The server's CPU ms per request, and wrk's p99 latency in ms."""
    wrk("warm-up", url, 1, 32, None)
    before = cpu_seconds(server.pid)
    row = wrk("measured", url, seconds, 32, None)
    return (cpu_seconds(server.pid) - before) * 1000 / max(row.rps * seconds, 1), row.p99_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("commits", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rows", nargs="+", default=["widget", "form", "forged", "health"])
    args = parser.parse_args()
    with commits_served(args.commits) as (sources, env, port, urls):
        base = f"http://127.0.0.1:{port}"
        samples: Samples = {}
        tails: Samples = {}
        for _ in range(args.rounds):
            for commit in args.commits:
                serve = [sys.executable, "-m", "prefill.cli", "serve", "--port", str(port)]
                commit_env = env | {"PYTHONPATH": str(sources[commit])}
                process = start(serve, commit_env, f"{base}/health/ready")
                try:
                    for row in args.rows:
                        cost, p99 = cpu_ms_and_p99(urls[row], args.seconds, process)
                        samples.setdefault((commit, row), []).append(cost)
                        tails.setdefault((commit, row), []).append(p99)
                finally:
                    stop(process)
    report("CPU ms per request", args.commits, args.rows, samples)
    report("p99 latency ms", args.commits, args.rows, tails)


def report(
    what: str, commits: list[str], rows: list[str], samples: dict[tuple[str, str], list[float]]
) -> None:
    print(f"{what}, median of the rounds (gain over the commit above it)")
    print(f"{'commit':12} " + " ".join(f"{row:>16}" for row in rows))
    previous = None
    for commit in commits:
        cells = []
        for row in rows:
            median = statistics.median(samples[commit, row])
            gain = statistics.median(samples[previous, row]) / median if previous else None
            cells.append(f"{median:8.3f} {f'x{gain:.2f}' if gain else '':>7}")
        print(f"{commit:12} " + " ".join(cells))
        previous = commit


if __name__ == "__main__":
    main()
