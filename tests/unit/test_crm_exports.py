"""The pure parts of reading a CRM's export: its dialect, its columns, languages and owners."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from prefill.contacts import Owners, OwnerUnresolved
from prefill.crm_columns import PRESETS, ColumnMap, column_map, own_columns, parse_columns
from prefill.csv_dialect import BLOCK_BYTES, Dialect, detect, header_delimiter
from prefill.customer_import import ExportFormat, read_customers
from prefill.import_rows import (
    NOT_DECODED,
    HeaderProblem,
    ImportRejected,
    Problem,
    csv_rows,
    open_detected,
)
from prefill.languages import locale_of
from prefill.models import ContactPerson


def test_utf8_with_or_without_a_byte_order_mark_is_read_as_utf8() -> None:
    assert detect("id,email,first_name\nc1,a@x.example,Järvi\n".encode()) == Dialect(
        "utf-8-sig", ","
    )
    assert detect(b"\xef\xbb\xbfid;email\n") == Dialect("utf-8-sig", ";")
    # A block that ends inside a character is still UTF-8: the next block completes it.
    assert not detect("id\tnimi\nc1\tJä".encode()[:-1]).guessed


def test_a_file_that_is_not_utf8_is_taken_for_windows_1252_and_says_it_was_a_guess() -> None:
    assert detect("id;email;first_name\nc1;a@x.example;Järvi\n".encode("cp1252")) == Dialect(
        "cp1252", ";", guessed=True
    )
    given = detect("id;email\n".encode("cp1252"), encoding="latin-1", delimiter=",")
    assert given == Dialect("latin-1", ",", guessed=False)


def test_the_delimiter_is_the_one_that_splits_the_header_into_most_columns() -> None:
    assert header_delimiter("id;email;first_name") == ";"
    assert header_delimiter("id\temail\tfirst_name") == "\t"
    assert header_delimiter('"Name, full";"Email";"Company, Inc."') == ";"
    assert header_delimiter("id,email;x") == ","  # equals: the first candidate
    assert header_delimiter("email") == ","


def test_detection_reads_the_first_block_only_and_the_rows_stream_on_whole(
    tmp_path: Path,
) -> None:
    # Past the first block the file holds Windows-1252: detection never sees it, and the rows
    # after it are bad rows, not a guess taken for the whole file.
    row = "c1;a@x.example;Ääkkönen\n"
    filler = row * (BLOCK_BYTES // len(row.encode()) + 1)
    data = ("id;email;first_name\n" + filler).encode() + "c2;b@x.example;Järvi\n".encode("cp1252")
    for path in (tmp_path / "big.csv", tmp_path / "big.csv.gz"):
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        with open_detected(str(path)) as (text, _, dialect):
            assert dialect == Dialect("utf-8-sig", ";")
            lines = text.read().splitlines()
        assert lines[1:-1] == [row.rstrip("\n")] * (len(lines) - 2)
        assert "\udce4" in lines[-1]  # the undecodable byte, kept for the row's report


def test_an_excel_file_compressed_is_detected_too(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv.gz"
    path.write_bytes(
        gzip.compress("id;email;first_name\r\nc1;a@x.example;Mäki\r\n".encode("cp1252"))
    )
    with open_detected(str(path)) as (text, _, dialect):
        assert dialect == Dialect("cp1252", ";", guessed=True)
        assert text.read() == "id;email;first_name\r\nc1;a@x.example;Mäki\r\n"


def rename(mapping: ColumnMap | None, header: list[str]) -> tuple[list[str], list[str]]:
    assert mapping is not None
    notes: list[str] = []
    return mapping.rename(header, notes.append), notes


def test_a_preset_matches_headers_ignoring_case_and_spacing_and_leaves_out_the_rest() -> None:
    header = ["Record ID", "first  name", "EMAIL", "Preferred language", "Lead Status"]
    ours, notes = rename(column_map("hubspot", {}), header)
    assert ours == ["id", "first_name", "email", "locale", ""]
    assert notes == ["left out 1 column(s) no field is mapped to: Lead Status"]
    loader = ["ID", "FIRSTNAME", "LASTNAME", "EMAIL", "ACCOUNTID"]
    assert rename(column_map("salesforce", {}), loader)[0] == [
        "id",
        "first_name",
        "last_name",
        "email",
        "",
    ]


def test_the_operators_columns_win_over_the_preset_and_can_leave_one_out() -> None:
    mapping = column_map("mailchimp", parse_columns("LEID=id, Company=-, Segment=attr_segment"))
    ours, notes = rename(mapping, ["Email Address", "Company", "LEID", "EUID", "Segment"])
    assert ours == ["email", "", "id", "", "attr_segment"]
    assert notes == ["left out 1 column(s) no field is mapped to: EUID"]
    # A header the operator mapped elsewhere gives way to the preset's next one for the field.
    mapping = column_map("hubspot", {"Phone Number": "attr_desk_phone"})
    header = ["Record ID", "Email", "Phone Number", "Mobile Phone Number"]
    assert rename(mapping, header)[0] == ["id", "email", "attr_desk_phone", "phone"]
    # Our own columns keep their names beside mapped ones.
    ours, _ = rename(column_map(None, {"Mail": "email"}), ["id", "Mail", "consent_personalization"])
    assert ours == ["id", "email", "consent_personalization"]


@pytest.mark.parametrize(
    ("preset", "given", "header", "reason"),
    [
        ("hubspot", {}, ["Email", "Name"], "no column for id: a HubSpot export names it "),
        (None, {"Mail": "email"}, ["id", "Mail", "email"], "'Mail' and 'email' are both mapped"),
        (None, {"Mail": "email"}, ["id", "E-mail"], "--columns names 'Mail', not a column"),
        ("hubspot", {"Email": "-"}, ["Record ID", "Email"], "no column for email: a HubSpot"),
    ],
)
def test_a_header_that_cannot_work_is_said_before_any_row(
    preset: str | None, given: dict[str, str], header: list[str], reason: str
) -> None:
    with pytest.raises(HeaderProblem, match="^" + reason.replace("(", r"\(")):
        rename(column_map(preset, given), header)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            ["Record ID", "First Name", "Email", "Phone Number", "Contact owner"],
            "missing column(s): email, id: it looks like a HubSpot export: read it with "
            "--preset hubspot",
        ),
        (
            ["ID", "FIRSTNAME", "EMAIL", "PHONE"],
            "missing column(s): email, id: it looks like a Salesforce export: read it with "
            "--preset salesforce",
        ),
        (
            ["Email Address", "First Name", "LEID", "EUID"],
            "missing column(s): email, id: it looks like a Mailchimp export",
        ),
        (  # HubSpot's id before 2023 is a Salesforce report's too: its phone tells them apart
            ["Contact ID", "Email", "Phone Number"],
            "it looks like a HubSpot export: read it with --preset hubspot",
        ),
        (
            ["Contact ID", "Email"],
            "it looks like a HubSpot or Salesforce export: read it with --preset hubspot or "
            "--preset salesforce",
        ),
        (
            ["id", "Mail"],
            "missing column(s): email: a CRM's export is read with --preset (hubspot, "
            "salesforce, mailchimp), or its columns mapped with --columns 'Their header=field,…'",
        ),
    ],
)
def test_a_header_without_id_or_email_is_pointed_to_a_preset_or_columns(
    header: list[str], reason: str
) -> None:
    with pytest.raises(HeaderProblem) as raised:
        own_columns(header)
    assert reason in str(raised.value)
    assert own_columns(["email", "id", "Notes"]) == ["email", "id", "Notes"]


def test_columns_given_are_checked_as_they_are_parsed() -> None:
    assert parse_columns("") == {}
    assert parse_columns("A=b=id") == {"A=b": "id"}  # a header may hold '='
    assert parse_columns('"Company, Inc."=company, Mail=email') == {
        "Company, Inc.": "company",
        "Mail": "email",
    }
    for given, reason in [
        ("Mail=mail", "'mail' is not a field"),
        ("X=consent_newsletter", "'newsletter' is not a consent purpose"),
        ("X=attr_a b", "'attr_a b' is not a field"),
        ("Mail", "'Mail': expected 'Their header=field'"),
        ("Mail=email,MAIL=first_name", "'MAIL' is mapped twice"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_columns(given)
    assert column_map(None, {}) is None  # our own format: read as it is, nothing to map


def test_every_preset_maps_its_required_fields_and_no_consent() -> None:
    for preset in PRESETS.values():
        assert {"id", "email"} <= set(preset.columns)
        assert not any(field.startswith("consent_") for field in preset.columns)


@pytest.mark.parametrize(
    ("said", "locale"),
    [
        ("fi", "fi"),
        ("FI", "fi"),
        ("fi-FI", "fi"),
        ("sv_FI", "sv"),
        ("Finnish", "fi"),
        ("suomi", "fi"),
        ("finska", "fi"),
        ("Swedish", "sv"),
        ("svenska", "sv"),
        ("Ruotsi", "sv"),
        ("English", "en"),
        ("englanti", "en"),
        ("engelska", "en"),
        ("English - United Kingdom", "en"),
        ("English (UK)", "en"),
        (" eng ", "en"),
        ("German", None),
        ("de", None),
        ("", None),
    ],
)
def test_a_language_by_code_or_by_name(said: str, locale: str | None) -> None:
    assert locale_of(said) == locale


def contact(contact_id: str, name: str, email: str) -> ContactPerson:
    return ContactPerson(id=contact_id, name=name, title={}, email=email)


def test_an_owner_by_id_email_or_name_and_a_shared_name_is_not_guessed() -> None:
    owners = Owners(
        [
            contact("aino", "Aino Virtanen", "aino.virtanen@kaamos.example"),
            contact("emily", "Emily Carter", "emily@kaamos.example"),
            contact("emily-2", "emily  carter", "emily.c@kaamos.example"),
        ]
    )
    assert owners.resolve("aino") == "aino"
    assert owners.resolve(" Aino.Virtanen@Kaamos.EXAMPLE") == "aino"
    assert owners.resolve("AINO  virtanen") == "aino"
    assert owners.resolve("emily.c@kaamos.example") == "emily-2"
    assert owners.resolve("Emily Carter") is OwnerUnresolved.SHARED_NAME
    assert owners.resolve("Pekka Nieminen") is OwnerUnresolved.UNKNOWN


def test_a_row_with_an_owner_in_two_columns_is_refused_at_the_header() -> None:
    rows = read_customers(
        ["id,email,owner,owner_id\n", "c1,a@x.example,aino,aino\n"], ExportFormat.CSV, "crm.csv"
    )
    with pytest.raises(ImportRejected, match="nothing was imported") as refused:
        next(rows)
    assert str(refused.value.problems[0]) == (
        "line 1: owner and owner_id: give the contact person in one column"
    )


def test_a_workbook_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    path = tmp_path / "hubspot-crm-exports-all-contacts.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(200))
    with pytest.raises(ImportRejected) as refused, open_detected(str(path)):
        pass
    assert refused.value.source == "hubspot-crm-exports-all-contacts.xlsx"
    assert str(refused.value.problems[0]) == (
        "a spreadsheet workbook, not a CSV: export or save it as CSV (CSV UTF-8 in Excel)"
    )


def test_bytes_the_encoding_cannot_decode_matter_only_in_the_columns_imported() -> None:
    rows = csv_rows(
        ["id,email,Notes\n", "c1,a@x.example,caf\udce9\n", "c2,b@x.\udce9xample,\n"],
        {"id", "email"},
        "crm.csv",
        rename=lambda _: ["id", "email", ""],
    )
    assert [row for _, row in rows] == [
        {"id": "c1", "email": "a@x.example"},
        Problem(3, NOT_DECODED, "c2"),
    ]
