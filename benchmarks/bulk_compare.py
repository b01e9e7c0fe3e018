"""Bulk import and mint of two versions of the code, interleaved, each as a ratio to the floor.

Run:  .venv/bin/python benchmarks/bulk_compare.py main HEAD [--rows 50000] [--rounds 3]

Each round writes the raw floor (bulk.py: each CSV row as one hash by pipelined HSET) into a
fresh redis-server, then, for each of the two git revisions' `src/` (committed code only, so
editing while it runs changes nothing), in alternating order, imports the examples and the
generated export into a fresh redis-server and mints for the consenting segment: rows per
second as a ratio to that round's floor, the processes' CPU time per row (which other load on
the machine moves least), the redis-server's own CPU time per imported row, and Redis memory
per customer. The machine's load moves all of a
round together; the ratios show what the code changed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from prefill.storage import EmbeddedRedis, free_tcp_port

sys.path.insert(0, str(Path(__file__).parent))
from bulk import CAMPAIGN, EXAMPLES, VERSIONS, count, raw_floor, run_cli
from crm_export import write_export

ROOT = Path(__file__).resolve().parents[1]


def source_of(revision: str, into: Path) -> Path:
    """The revision's `src/` tree, extracted (nothing installed: PYTHONPATH points at it)."""
    git, tar = shutil.which("git") or "git", shutil.which("tar") or "tar"
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run([tar, "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def one_version(source: Path, export: Path, rows: int, folder: Path) -> tuple[float, ...]:
    """Import and mint rows per second, Redis bytes per customer, and the import's and the
    mint's CPU microseconds per row, on a fresh server."""
    server = EmbeddedRedis(folder / "redis", port=free_tcp_port())
    server.start()
    try:
        url, path = server.url, {"PYTHONPATH": str(source)}
        run_cli(url, "examples", 7, "import", "examples", str(EXAMPLES), extra_env=path)
        with redis.Redis.from_url(url) as client:
            before = int(client.info("memory")["used_memory"])
            server_before = _server_cpu(client)
            imported = run_cli(
                url, "import", rows, "import", "customers", str(export), *VERSIONS, extra_env=path
            )
            server_cpu = (_server_cpu(client) - server_before) / rows * 1e6
            created = count(r"([\d,]+) created", imported.out)
            per_customer = (int(client.info("memory")["used_memory"]) - before) / created
        minted = run_cli(
            url,
            "mint",
            created + 7,
            "mint",
            "--campaign",
            CAMPAIGN,
            "--all-consenting",
            output=folder / "minted.csv",
            extra_env=path,
        )
    finally:
        server.stop()
    return (
        imported.rate,
        minted.rate,
        per_customer,
        imported.cpu_seconds / rows * 1e6,
        minted.cpu_seconds / created * 1e6,
        server_cpu,
    )


def _server_cpu(client: redis.Redis) -> float:
    """The redis-server's CPU seconds so far: what the scripts cost Redis."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("before", help="a git revision, e.g. main")
    parser.add_argument("after", help="another, e.g. HEAD")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, ...]]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        versions = {}
        for revision in (args.before, args.after):
            (folder / revision.replace("/", "_")).mkdir()
            versions[revision] = source_of(revision, folder / revision.replace("/", "_"))
        export = folder / "customers.csv"
        with export.open("w", encoding="utf-8") as handle:
            write_export(handle, args.rows, args.rows // 1000)
        for round_ in range(args.rounds):
            floor_server = EmbeddedRedis(folder / f"floor-{round_}", port=free_tcp_port())
            floor_server.start()
            try:
                floor = raw_floor(floor_server.url, export).rate
            finally:
                floor_server.stop()
            order = list(versions) if round_ % 2 == 0 else list(versions)[::-1]
            for name in order:
                work = folder / f"{name.replace('/', '_')}-run-{round_}"
                work.mkdir()
                imported, minted, per_customer, import_cpu, mint_cpu, server_cpu = one_version(
                    versions[name], export, args.rows, work
                )
                figures = (
                    imported / floor,
                    minted / floor,
                    per_customer,
                    import_cpu,
                    mint_cpu,
                    server_cpu,
                )
                results[name].append(figures)
                said = _said(figures)
                print(f"round {round_ + 1} {name:>12}: {said} ({floor:,.0f} rows/s)", flush=True)
    print(f"\nmedians of {args.rounds} round(s), {args.rows:,} rows:")
    for name, rounds in results.items():
        medians = tuple(statistics.median(column) for column in zip(*rounds, strict=True))
        print(f"{name:>12}: {_said(medians)}")


def _said(figures: tuple[float, ...]) -> str:
    imported, minted, memory, import_cpu, mint_cpu, server_cpu = figures
    return (
        f"import {imported:.2f}x, mint {minted:.2f}x the floor; CPU per row: import "
        f"{import_cpu:.0f} us (Redis {server_cpu:.0f} us), mint {mint_cpu:.0f} us; "
        f"{memory:,.0f} B/customer"
    )


if __name__ == "__main__":
    main()
