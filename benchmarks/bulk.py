"""Bulk import and mint at CRM scale, measured side by side in one run.

Run:  .venv/bin/python benchmarks/bulk.py [--rows 1000000] [--broken 1000] [--cluster]

Starts its own redis-server (the shipped binary, on a free port, AOF fsync always as in the
embedded mode), writes a generated CRM export (benchmarks/crm_export.py) and runs the real CLI
on it, each step a process of its own, so that the peak memory measured is that step's:

- the import of a tenth of the rows (into another database), then of all of them: time, rows
  per second, peak memory of the process (side by side: constant memory shows as ~1.0x), and
  Redis memory per customer;
- the same import again, which must change nothing;
- minting for the segment of all consenting customers, and for a list of every id;
- the floor beside them: the same rows written raw, each CSV row as one hash by pipelined
  `HSET` (1,000 a round trip), into a second, identical redis-server, with its rows per second
  and bytes per row. Import and mint are printed as ratios to that floor.

With `--cluster`, each of the two is a Redis Cluster of three primaries and three replicas
(tests/redis_cluster.py, AOF fsync always) instead, memory is summed over the primaries, and the
import of a tenth (which needs a second database) is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import redis

from prefill.storage import EmbeddedRedis, free_tcp_port

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from crm_export import write_export
from tests.redis_cluster import RedisClusterProcesses

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CAMPAIGN = "spring-summit-2027-invite"
VERSIONS = (
    "--notice-version",
    "personalization=pz-2026-01",
    "--notice-version",
    "email_marketing=em-2026-01",
)


RAW_BATCH = 1000
"""Rows per pipelined round trip of the raw floor."""


class Floor(msgspec.Struct):
    """The same rows written as plainly as Redis allows: what the import is compared with."""

    rows: int
    seconds: float
    bytes_per_row: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def client_of(url: str) -> redis.Redis | redis.RedisCluster:
    return redis.RedisCluster.from_url(url) if CLUSTER_ENV else redis.Redis.from_url(url)


def used_memory(url: str) -> int:
    """INFO memory's used_memory: of the server, or summed over a cluster's primaries."""
    if not CLUSTER_ENV:
        with redis.Redis.from_url(url) as client:
            return int(client.info("memory")["used_memory"])
    with redis.RedisCluster.from_url(url) as cluster:
        primaries = [(node.host, node.port) for node in cluster.get_primaries()]
    total = 0
    for host, port in primaries:
        with redis.Redis(host=host, port=port) as node:
            total += int(node.info("memory")["used_memory"])
    return total


CLUSTER_ENV: dict[str, str] = {}
"""The environment that makes the CLI use a cluster, when the run is on one."""


def raw_floor(url: str, export: Path) -> Floor:
    """Each CSV row as one hash `raw:<id>` by pipelined HSET, timed, into an empty server."""
    before = used_memory(url)
    with client_of(url) as client, export.open(encoding="utf-8", newline="") as f:
        rows = 0
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for row in csv.DictReader(f):
            pipe.hset(f"raw:{row['id']}", mapping={k: v for k, v in row.items() if k})
            rows += 1
            if rows % RAW_BATCH == 0:
                pipe.execute()
        pipe.execute()
        seconds = time.perf_counter() - start
    return Floor(rows, seconds, (used_memory(url) - before) / rows)


class Step(msgspec.Struct):
    name: str
    rows: int
    seconds: float
    peak_mib: float
    out: str
    err: str
    cpu_seconds: float = 0.0
    """The process's own CPU time: what other load on the machine moves least."""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def run_cli(
    url: str,
    name: str,
    rows: int,
    *args: str,
    output: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Step:
    """`prefill <args>` in a process of its own: its time, its peak memory, what it said.
    Standard output goes to `output` when given (a mint's CSV)."""
    env = os.environ | {
        "PREFILL_REDIS_URL": url,
        "PREFILL_SECRET_KEYS": SECRET,
        "PREFILL_PUBLIC_URL": "https://prefill.example.com",
    }
    env |= CLUSTER_ENV | (extra_env or {})
    command = [sys.executable, "-m", "prefill.cli", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with output.open("w") if output else contextlib.nullcontext(out) as target:
            start = time.perf_counter()
            process = subprocess.Popen(command, env=env, stdout=target, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        step = Step(name, rows, seconds, usage.ru_maxrss / 1024, out.read(), err.read())
        step.cpu_seconds = usage.ru_utime + usage.ru_stime
    if process.returncode not in (0, 1):  # 1: some rows were bad, as they are meant to be
        raise SystemExit(f"{name} failed ({process.returncode}):\n{step.err}")
    return step


def count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    if found is None:
        raise SystemExit(f"{pattern!r} not in:\n{text}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--broken", type=int, default=None, help="default: one row in 1,000")
    parser.add_argument("--cluster", action="store_true", help="on Redis Clusters (3+3 nodes)")
    args = parser.parse_args()
    if args.cluster:
        CLUSTER_ENV["PREFILL_REDIS_CLUSTER"] = "1"
    rows = args.rows
    broken = rows // 1000 if args.broken is None else args.broken
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        full, small, ids = folder / "customers.csv", folder / "small.csv", folder / "ids.csv"
        with full.open("w", encoding="utf-8") as handle:
            write_export(handle, rows, broken)
        with small.open("w", encoding="utf-8") as handle:
            write_export(handle, max(rows // 10, 1), broken // 10)
        with full.open(encoding="utf-8") as source, ids.open("w", encoding="utf-8") as target:
            target.writelines(line.split(",", 1)[0] + "\n" for line in source)
        took = time.perf_counter() - started
        print(f"generated {rows:,} rows, {broken:,} of them broken, in {took:.1f} s")
        servers: list[EmbeddedRedis | RedisClusterProcesses] = (
            [RedisClusterProcesses(folder / name) for name in ("cluster", "cluster-floor")]
            if args.cluster
            else [EmbeddedRedis(folder / name, port=free_tcp_port()) for name in ("r", "floor")]
        )
        try:
            for each in servers:
                each.start()
            server, floor_server = servers
            floor = raw_floor(floor_server.url, full)
            tenth, steps, per_customer = measure(server.url, rows, full, small, ids, folder)
        finally:
            for each in servers:
                each.stop()
    report(tenth, steps, per_customer, floor)


def measure(
    url: str, rows: int, full: Path, small: Path, ids: Path, folder: Path
) -> tuple[Step | None, list[Step], float]:
    errors = ("--errors", str(folder / "errors.csv"))
    run_cli(url, "examples", 7, "import", "examples", str(EXAMPLES))
    tenth = None
    if not CLUSTER_ENV:  # into a second database, which a cluster does not have
        small_url = url.removesuffix("/0") + "/1"
        run_cli(small_url, "examples", 7, "import", "examples", str(EXAMPLES))
        tenth = run_cli(
            small_url,
            "import a tenth",
            rows // 10,
            "import",
            "customers",
            str(small),
            *VERSIONS,
            *errors,
        )
    before = used_memory(url)
    first = run_cli(url, "import", rows, "import", "customers", str(full), *VERSIONS, *errors)
    created = count(r"([\d,]+) created", first.out)
    per_customer = (used_memory(url) - before) / created
    again = run_cli(url, "import again", rows, "import", "customers", str(full), *VERSIONS, *errors)
    if count(r"([\d,]+) created", again.out) or count(r"([\d,]+) updated", again.out):
        raise SystemExit(f"the second import changed something:\n{again.out}")
    segment = run_cli(
        url,
        "mint the consenting segment",
        created + 7,
        "mint",
        "--campaign",
        CAMPAIGN,
        "--all-consenting",
        output=folder / "segment.csv",
    )
    listed = run_cli(
        url,
        "mint a list of every id",
        rows,
        "mint",
        "--campaign",
        CAMPAIGN,
        "--input",
        str(ids),
        output=folder / "listed.csv",
    )
    return tenth, [first, again, segment, listed], per_customer


def report(tenth: Step | None, steps: list[Step], per_customer: float, floor: Floor) -> None:
    print(f"\n{'step':30} {'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak MiB':>9} {'/ raw':>6}")
    for step in [tenth, *steps] if tenth else steps:
        print(
            f"{step.name:30} {step.rows:10,} {step.seconds:8.1f} {step.rate:8,.0f} "
            f"{step.peak_mib:9.1f} {step.rate / floor.rate:6.2f}"
        )
    print(
        f"{'raw pipelined HSET (floor)':30} {floor.rows:10,} {floor.seconds:8.1f} "
        f"{floor.rate:8,.0f} {'':9} {1:6.2f}"
    )
    first, again, segment, listed = steps
    print(f"\nRedis memory per customer: {per_customer:,.0f} bytes")
    print(f"the same rows as one raw hash each: {floor.bytes_per_row:,.0f} bytes")
    if tenth:
        print(f"peak memory, all rows / a tenth: {first.peak_mib / tenth.peak_mib:.2f}x")
    print(f"import again (nothing to write) / first import, rows/s: {again.rate / first.rate:.2f}x")
    print(f"mint a list / import, rows/s: {listed.rate / first.rate:.2f}x")
    for step in (first, segment, listed):
        said = (step.out + step.err).splitlines()
        summary = [line for line in said if re.match(r"\S+: [\d,]+ rows|minted|  \d", line)]
        print(f"\n{step.name}:\n  " + "\n  ".join(summary))


if __name__ == "__main__":
    main()
