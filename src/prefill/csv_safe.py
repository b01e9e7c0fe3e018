"""The one CSV writer of every file the service writes: cells a spreadsheet would run are defused.

A name submitted through the public form (`=HYPERLINK(...)`), or an input column passed through
mint, would otherwise run as a formula when the operator opens the file (OWASP "CSV Injection").
Following OWASP, a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a
leading `'`, which spreadsheets show as text; every cell is quoted where csv needs it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any, TextIO, cast

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
        self._target = target
        self._quoted = io.StringIO()
        self._writer = csv.writer(self._quoted, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._target.write(self.line(row))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """The rows in one write: a mint's batch is a few hundred kilobytes of text, which
        the stream encodes once rather than row by row."""
        self._target.write("".join([self.line(row) for row in rows]))

    def line(self, row: Iterable[object]) -> str:
        """The row as csv.writer writes it, its cells neutralised (`neutralise`, inline: a
        mint writes a dozen cells a customer)."""
        cells = [
            "'" + cell if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) else cell
            for cell in row
        ]
        line = _plain_line(cells)
        if line is None:
            self._writer.writerow(cells)
            line = self._quoted.getvalue()
            self._quoted.seek(0)
            self._quoted.truncate()
        return line


def _plain_line(cells: list[object]) -> str | None:
    """The row as csv.writer writes it, when no cell needs quoting; else None. csv.writer looks
    at every character in Python's C loop (a mint's row of signed URLs, ~800 characters, took
    it ~15 µs); joining and scanning for the few characters that matter takes ~1 µs."""
    try:
        line = ",".join(cast("list[str]", cells))
    except TypeError:
        return None  # csv.writer's own: numbers and None
    if (
        cells == [""]  # a lone empty cell, which csv.writer writes ""
        or line.count(",") != len(cells) - 1
        or '"' in line
        or "\n" in line
        or "\r" in line  # what makes csv.writer quote a cell, or might ("\r" is left to it)
    ):
        return None
    return line + "\n"


class SafeDictWriter:
    """`csv.DictWriter` with every cell (and header) neutralised; unknown keys are ignored."""

    def __init__(self, target: TextIO, fieldnames: list[str]) -> None:
        self.fieldnames = fieldnames
        self._writer = SafeWriter(target)

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow(row.get(name, "") for name in self.fieldnames)

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """The rows in one write (SafeWriter.writerows)."""
        names = self.fieldnames
        self._writer.writerows([row.get(name, "") for name in names] for row in rows)
