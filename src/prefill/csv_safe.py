"""The one CSV writer of every file the service writes: cells a spreadsheet would run are defused.

A name submitted through the public form (`=HYPERLINK(...)`), or an input column passed through
mint, would otherwise run as a formula when the operator opens the file (OWASP "CSV Injection").
Following OWASP, a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
leading `'`, which spreadsheets show as text; every cell is quoted where csv needs it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """`value`, or its text behind a `'` if a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    # Numbers are written by the service itself (counts), never negative: left as they are.
    return value


class SafeWriter:
    """`csv.writer` with every cell neutralised."""

    def __init__(self, target: TextIO) -> None:
        self._writer = csv.writer(target, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """`csv.DictWriter` with every cell (and header) neutralised; unknown keys are ignored."""

    def __init__(self, target: TextIO, fieldnames: list[str]) -> None:
        self.fieldnames = fieldnames
        self._writer = SafeWriter(target)

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow(row.get(name, "") for name in self.fieldnames)
