"""A made-up CRM export of any size, with a few broken rows, for the bulk import and mint.

Run:  .venv/bin/python benchmarks/crm_export.py --rows 1000000 --broken 1000 > customers.csv
then: .venv/bin/prefill import customers customers.csv \\
          --notice-version personalization=pz-2026-01 --notice-version email_marketing=em-2026-01

Rows are the examples' shape (ids crm-0000001...), spread over the three languages and the
example contact persons, with consent columns; `--broken` rows are spread evenly and each has
one fault the import must report by line: a bad email, phone, language, consent value, id, an
extra value, or a duplicate id. The same arguments give the same file.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from typing import TextIO

HEADER = (
    "id,email,first_name,last_name,phone,company,job_title,locale,owner_id,"
    "consent_personalization,consent_email_marketing,attr_segment\n"
)
FIRST = ["Matti", "Aino", "Björn", "Linnéa", "Kadri", "Siobhán", "Eero", "Päivi", "Emily", "Johan"]
LAST = ["Korhonen", "Virtanen", "Åkerlund", "Sjöholm", "Tamm", "O'Reilly", "Mäkelä", "Carter"]
OWNERS = ["aino-virtanen", "johan-lindqvist", "emily-carter", "pekka-nieminen", ""]
LOCALES = ["fi", "sv", "en", "fi-FI", "SV"]
CONSENTS = ["granted", "granted", "granted", "withdrawn", ""]
FAULTS: list[Callable[[str], str]] = [
    lambda row: row.replace("@", " at ", 1),  # email
    lambda row: _cell(row, 4, "12345"),  # phone
    lambda row: _cell(row, 7, "de"),  # language
    lambda row: _cell(row, 9, "maybe"),  # consent value
    lambda row: _cell(row, 0, "bad id!"),  # id
    lambda row: row.rstrip("\n") + ",surplus\n",  # one value too many
]


def _cell(row: str, index: int, value: str) -> str:
    cells = row.rstrip("\n").split(",")
    cells[index] = value
    return ",".join(cells) + "\n"


def customer_row(n: int, rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return (
        f"crm-{n:07d},{first.lower()}.{n}@customer{n % 997}.example,{first},"
        f"{last},+35840{rng.randrange(1_000_000, 9_999_999)},"
        f"Company {n % 50_000} Oy,Engineer,{rng.choice(LOCALES)},{rng.choice(OWNERS)},"
        f"{rng.choice(CONSENTS)},{rng.choice(CONSENTS)},s{n % 7}\n"
    )


def write_export(out: TextIO, rows: int, broken: int, seed: int = 2027) -> list[int]:
    """Write the export; returns the file lines of the broken rows."""
    rng = random.Random(seed)
    every = rows // broken if broken else 0
    broken_lines: list[int] = []
    out.write(HEADER)
    for n in range(1, rows + 1):
        row = customer_row(n, rng)
        if every and n % every == 0 and len(broken_lines) < broken:
            fault = len(broken_lines) % (len(FAULTS) + 1)
            # The last kind of fault repeats an earlier customer's id.
            row = FAULTS[fault](row) if fault < len(FAULTS) else _cell(row, 0, f"crm-{n - 1:07d}")
            broken_lines.append(n + 1)  # the header is line 1
        out.write(row)
    return broken_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--broken", type=int, default=1000, help="how many rows to break")
    parser.add_argument("--seed", type=int, default=2027)
    args = parser.parse_args()
    write_export(sys.stdout, args.rows, args.broken, args.seed)


if __name__ == "__main__":
    main()
