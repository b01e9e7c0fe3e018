"""The import's parsing alone (CSV rows to validated customers, no Redis), two revisions of the
code interleaved: CPU microseconds per row.

Run:  .venv/bin/python benchmarks/import_parse.py main HEAD [--rows 50000] [--rounds 5]

Each round runs each revision's `src/` (committed code only) in a process of its own over the
same generated export (bulk.py's, held in memory), in alternating order. The machine's other
load moves single rounds a lot: compare the minimums and medians side by side.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bulk_compare import source_of
from crm_export import write_export

VERSIONS = {"personalization": "pz-2026-01", "email_marketing": "em-2026-01"}


def parse_once(rows: int) -> float:
    """CPU µs per row of read_customers over a generated export (in this process's code)."""
    from prefill.customer_import import ExportFormat, read_customers

    text = io.StringIO()
    write_export(text, rows, rows // 1000)
    stream = io.StringIO(text.getvalue(), newline="")
    started = time.process_time()
    for _ in read_customers(stream, ExportFormat.CSV, "customers.csv", VERSIONS, "FI"):
        pass
    return (time.process_time() - started) / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("before", nargs="?", help="a git revision, e.g. main")
    parser.add_argument("after", nargs="?", help="another, e.g. HEAD")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.once:
        print(parse_once(args.rows))
        return
    results: dict[str, list[float]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        for revision in results:
            folder = Path(tmp) / revision.replace("/", "_")
            folder.mkdir()
            sources[revision] = source_of(revision, folder)
        for round_ in range(args.rounds):
            order = list(results) if round_ % 2 == 0 else list(results)[::-1]
            for revision in order:
                command = [sys.executable, __file__, "--once", "--rows", str(args.rows)]
                env = {"PYTHONPATH": str(sources[revision])}
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                results[revision].append(float(out.stdout))
    print(f"CPU µs per row of parsing {args.rows:,} rows, {args.rounds} rounds:")
    for revision, figures in results.items():
        said = " ".join(f"{figure:.1f}" for figure in figures)
        print(
            f"{revision:>12}: min {min(figures):.1f}, median {statistics.median(figures):.1f} "
            f"({said})"
        )


if __name__ == "__main__":
    main()
