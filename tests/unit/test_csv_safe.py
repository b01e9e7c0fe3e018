"""The CSV writer defuses every cell a spreadsheet would run as a formula (OWASP CSV Injection)."""

from __future__ import annotations

import csv
import io
import itertools

import pytest

from prefill.csv_safe import SafeDictWriter, SafeWriter, neutralise


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://evil.example","x")', "+358401234567", "-2+3", "@SUM(A1)", "\tx", "\rx"],
)
def test_a_formula_start_is_written_as_text(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Matti", "https://x.example/f/a?t=b", "", "a=b", 3, "'quoted"])
def test_other_cells_are_left_as_they_are(cell: object) -> None:
    assert neutralise(cell) == cell


def test_both_writers_neutralise_every_cell_header_included() -> None:
    out = io.StringIO()
    SafeWriter(out).writerows([["=1+1", "a,b"], ["ok", "@x"]])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["'=1+1", "a,b"], ["ok", "'@x"]]
    out = io.StringIO()
    writer = SafeDictWriter(out, ["name", "-col"])
    writer.writeheader()
    writer.writerow({"name": "=cmd|' /C calc'!A0", "other": "ignored"})
    assert out.getvalue() == "name,'-col\n'=cmd|' /C calc'!A0,\n"


def _rows() -> list[list[object]]:
    """Every row of up to three cells drawn from text with each character csv.writer treats
    specially (delimiter, quote, line breaks), plain text, a lone empty cell, and non-text."""
    cells = ["", "x", "a,b", 'say "hi"', "a\nb", "a\rb", " ", "'q", "\u2028", 7, None]
    return [list(row) for size in range(4) for row in itertools.product(cells, repeat=size)]


def test_rows_are_written_byte_for_byte_as_csv_writer_writes_them() -> None:
    # Rows without a cell to quote skip csv.writer's per-character loop: the same bytes out.
    rows = _rows()
    expected, written = io.StringIO(), io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows([map(neutralise, row) for row in rows])
    SafeWriter(written).writerows(rows)
    assert len(rows) > 1000
    assert written.getvalue() == expected.getvalue()


def test_rows_written_together_are_the_rows_written_one_by_one() -> None:
    names = ["a", "b", "c"]
    rows = [dict(zip(names, row, strict=False)) for row in _rows()]
    together, one_by_one = io.StringIO(), io.StringIO()
    SafeDictWriter(together, names).writerows(rows)
    each = SafeDictWriter(one_by_one, names)
    for row in rows:
        each.writerow(row)
    assert together.getvalue() == one_by_one.getvalue()
