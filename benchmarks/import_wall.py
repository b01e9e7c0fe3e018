"""The import's wall time against its CPU time, in one process, two revisions interleaved.

Run:  .venv/bin/python benchmarks/import_wall.py main HEAD [--rows 50000] [--rounds 3]

Each round imports the same generated export (bulk.py's) with each revision's `src/`
(committed code only) into a fresh redis-server (AOF fsync always), calling
`import_customers` in a process of its own without the CLI: rows per second, wall and CPU
seconds. Where the wall time is well above the CPU time, the import waits for Redis; overlap
shows as the two coming closer.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bulk import EXAMPLES, SECRET
from bulk_compare import source_of
from crm_export import write_export

VERSIONS = {"personalization": "pz-2026-01", "email_marketing": "em-2026-01"}


async def import_once(url: str, rows: int) -> tuple[float, float]:
    """Wall and CPU seconds of importing a generated export (in this process's code)."""
    from prefill.customer_import import ExportFormat, import_customers, read_customers
    from prefill.pseudonyms import Pseudonymizer
    from prefill.store import Repository
    from prefill.store.client import connect

    text = io.StringIO()
    write_export(text, rows, rows // 1000)
    client = connect(url, 10, 0)
    try:
        repository = Repository(client, Pseudonymizer([SECRET]), 400)
        stream = io.StringIO(text.getvalue(), newline="")
        started, cpu = time.perf_counter(), time.process_time()
        read = read_customers(stream, ExportFormat.CSV, "customers.csv", VERSIONS, "FI")
        await import_customers(repository, read, VERSIONS)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("before", nargs="?", help="a git revision, e.g. main")
    parser.add_argument("after", nargs="?", help="another, e.g. HEAD")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.url:
        print(*asyncio.run(import_once(args.url, args.rows)))
        return
    from prefill.storage import EmbeddedRedis, free_tcp_port

    results: dict[str, list[tuple[float, float]]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sources = {}
        for revision in results:
            (folder / revision.replace("/", "_")).mkdir()
            sources[revision] = source_of(revision, folder / revision.replace("/", "_"))
        for round_ in range(args.rounds):
            order = list(results) if round_ % 2 == 0 else list(results)[::-1]
            for revision in order:
                server = EmbeddedRedis(
                    folder / f"redis-{round_}-{revision.replace('/', '_')}",
                    port=free_tcp_port(),
                )
                server.start()
                try:
                    env = os.environ | {"PYTHONPATH": str(sources[revision])}
                    env |= {"PREFILL_REDIS_URL": server.url, "PREFILL_SECRET_KEYS": SECRET}
                    cli = [sys.executable, "-m", "prefill.cli", "import", "examples"]
                    subprocess.run([*cli, str(EXAMPLES)], env=env, check=True, capture_output=True)
                    command = [
                        sys.executable,
                        __file__,
                        "--url",
                        server.url,
                        "--rows",
                        str(args.rows),
                    ]
                    out = subprocess.run(
                        command, env=env, check=True, capture_output=True, text=True
                    )
                finally:
                    server.stop()
                wall, cpu = (float(figure) for figure in out.stdout.split())
                results[revision].append((wall, cpu))
                print(
                    f"round {round_ + 1} {revision:>12}: {_said(args.rows, wall, cpu)}", flush=True
                )
    print(f"\nmedians of {args.rounds} round(s), {args.rows:,} rows:")
    for revision, figures in results.items():
        wall = statistics.median(wall for wall, _ in figures)
        cpu = statistics.median(cpu for _, cpu in figures)
        print(f"{revision:>12}: {_said(args.rows, wall, cpu)}")


def _said(rows: int, wall: float, cpu: float) -> str:
    per_row = cpu / rows * 1e6
    return f"{rows / wall:,.0f} rows/s, wall {wall:.2f} s, CPU {cpu:.2f} s ({per_row:.0f} µs/row)"


if __name__ == "__main__":
    main()
