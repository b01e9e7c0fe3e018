"""The CSV writer defuses every cell a spreadsheet would run as a formula (OWASP CSV Injection)."""

from __future__ import annotations

import csv
import io

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
