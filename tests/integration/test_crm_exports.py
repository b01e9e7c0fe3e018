"""Real CRM exports through `prefill import customers` against the test's own Redis: the
standard contact exports of HubSpot, Salesforce and Mailchimp with `--preset`, anything else
with `--columns`, a file saved from Excel in a Finnish locale, owners and languages as a CRM
writes them, and every error of a row."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

import msgspec
from click.testing import CliRunner

from prefill.cli import main
from prefill.store.keys import customer_key
from tests.helpers import run, stored_customer, stored_history
from tests.integration.test_bulk_import import snapshot
from tests.topology import sync_client

MARKETING = ("--notice-version", "email_marketing=em-2026-01")


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8", **dialect: Any) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, **dialect).writerows(rows)
    return path


def record(redis_url: str, customer_id: str) -> dict[str, Any]:
    with sync_client(redis_url) as client:
        stored = stored_customer(client, customer_id)
    assert stored, customer_id
    return stored


def consent_events(redis_url: str, customer_id: str) -> list[dict[str, Any]]:
    with sync_client(redis_url) as client:
        return [msgspec.to_builtins(e) for e in stored_history(client, customer_id)]


HUBSPOT = [
    [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Company Name",
        "Job Title",
        "Preferred language",
        "Contact owner",
        "Lifecycle Stage",
        "Create Date",
    ],
    [
        "51",
        "Matti",
        "Korhonen",
        "Matti.Korhonen@Lampo.example",
        "040 555 1001",
        "Lämpötekniikka Korhonen Oy",
        "Laboratorioinsinööri",
        "Finnish",
        "Aino Virtanen",
        "customer",
        "2026-01-05 10:00",
    ],
    [
        "52",
        "Björn",
        "Åkerlund",
        "bjorn@kvarken.example",
        "+358 40 555 1003",
        "Kvarkens Analys Ab",
        "Laboratoriechef",
        "Swedish",
        "johan.lindqvist@kaamos.example",
        "lead",
        "2026-01-06 10:00",
    ],
    [
        "53",
        "Kadri",
        "Tamm",
        "kadri@tallinnbio.example",
        "+372 5555 1005",
        "Tallinn BioMõõt OÜ",
        "Head of Laboratory",
        "English - United Kingdom",
        "",
        "customer",
        "2026-01-07 10:00",
    ],
]


def test_a_hubspot_export_imports_with_its_languages_and_owners(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    source = write_csv(tmp_path / "hubspot-crm-exports-all-contacts.csv", HUBSPOT)
    code, _, err = run(env, "import", "customers", str(source))
    assert code == 1
    assert "line 1: missing column(s): email, id: it looks like a HubSpot export: read it " in err
    code, out, err = run(env, "import", "customers", str(source), "--preset", "hubspot")
    assert code == 0, err
    assert "3 rows: 3 created, 0 updated, 0 unchanged, 0 bad" in out
    assert "left out 2 column(s) no field is mapped to: Lifecycle Stage, Create Date" in err
    assert record(redis_url, "51") == {
        "id": "51",
        "email": "matti.korhonen@lampo.example",
        "first_name": "Matti",
        "last_name": "Korhonen",
        "phone": "+358405551001",
        "company": "Lämpötekniikka Korhonen Oy",
        "job_title": "Laboratorioinsinööri",
        "locale": "fi",
        "owner_id": "aino-virtanen",
        "attributes": {},
        "generation": 0,
    }
    assert (record(redis_url, "52")["locale"], record(redis_url, "52")["owner_id"]) == (
        "sv",
        "johan-lindqvist",
    )
    assert record(redis_url, "53")["locale"] == "en"
    assert record(redis_url, "53")["owner_id"] is None
    # A HubSpot export states no consent: none is recorded.
    assert consent_events(redis_url, "51") == []

    before = snapshot(redis_url)
    code, out, _ = run(env, "import", "customers", str(source), "--preset", "hubspot")
    assert code == 0
    assert "3 rows: 0 created, 0 updated, 3 unchanged, 0 bad" in out
    assert snapshot(redis_url) == before


def test_a_salesforce_report_and_a_data_loader_export_read_the_same(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    report = write_csv(
        tmp_path / "report.csv",
        [
            [
                "Contact Owner",
                "First Name",
                "Last Name",
                "Title",
                "Account Name",
                "Phone",
                "Email",
                "Contact ID",
                "Mailing City",
            ],
            [
                "Emily Carter",
                "Siobhán",
                "O'Reilly",
                "Senior Research Scientist",
                "Liffey Labs Ltd",
                "+353 87 555 1006",
                "siobhan@liffeylabs.example",
                "0035g00000AbCdEAAA",
                "Dublin",
            ],
        ],
    )
    code, out, err = run(env, "import", "customers", str(report), "--preset", "salesforce")
    assert code == 0, err
    assert "1 rows: 1 created" in out
    stored = record(redis_url, "0035g00000AbCdEAAA")
    assert (stored["first_name"], stored["company"], stored["job_title"]) == (
        "Siobhán",
        "Liffey Labs Ltd",
        "Senior Research Scientist",
    )
    assert (stored["phone"], stored["owner_id"]) == ("+353875551006", "emily-carter")

    # Data Loader writes the API names, upper-cased; the contact's id is the same record.
    loader = write_csv(
        tmp_path / "extract.csv",
        [
            ["ID", "FIRSTNAME", "LASTNAME", "EMAIL", "PHONE", "TITLE", "ACCOUNTID"],
            [
                "0035g00000AbCdEAAA",
                "Siobhán",
                "O'Reilly",
                "siobhan@liffeylabs.example",
                "+353 87 555 1006",
                "Head of Research",
                "0015g00000XyZ",
            ],
        ],
    )
    code, out, err = run(env, "import", "customers", str(loader), "--preset", "salesforce")
    assert code == 0, err
    assert "1 rows: 0 created, 1 updated" in out
    assert "left out 1 column(s) no field is mapped to: ACCOUNTID" in err
    assert record(redis_url, "0035g00000AbCdEAAA")["job_title"] == "Head of Research"


MAILCHIMP_HEADER = (
    "Email Address,First Name,Last Name,Address,Phone Number,Company,Language,MEMBER_RATING,"
    "OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,"
    "REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS\n"
)


def test_a_mailchimp_export_records_consent_only_when_the_operator_says_it_states_it(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "subscribed_members_export_1a2b3c.csv.gz"
    source.write_bytes(
        gzip.compress(
            (
                MAILCHIMP_HEADER
                + 'linnea@borgamarin.example,Linnéa,Sjöholm,"Strandgatan 1  Borgå  06100  FI",'
                "+358 50 555 1004,Borgå Marinlab Ab,sv,2,2025-03-01 10:00:00,,2025-03-01 10:01:00,"
                ',,,,,,,,2025-03-01 10:01:00,123456789,a1b2c3d4e5,"met at\nthe fair",\n'
            ).encode()
        )
    )
    code, out, err = run(env, "import", "customers", str(source), "--preset", "mailchimp")
    assert code == 0, err
    stored = record(redis_url, "a1b2c3d4e5")  # EUID: the same address in any audience
    assert (stored["email"], stored["locale"], stored["company"]) == (
        "linnea@borgamarin.example",
        "sv",
        "Borgå Marinlab Ab",
    )
    assert "Address" in err  # left out, and said so: prefill has no use for it
    assert consent_events(redis_url, "a1b2c3d4e5") == []  # being on a list is not implied

    code, _, err = run(
        env, "import", "customers", str(source), "--preset", "mailchimp", "--consent",
        "email_marketing=granted",
    )  # fmt: skip
    assert code == 2
    assert "--notice-version email_marketing=VERSION" in err
    code, out, err = run(
        env, "import", "customers", str(source), "--preset", "mailchimp", "--consent",
        "email_marketing=granted", *MARKETING,
    )  # fmt: skip
    assert code == 0, err
    assert "1 consent changes recorded" in out
    (event,) = consent_events(redis_url, "a1b2c3d4e5")
    assert (event["purpose"], event["action"], event["source"], event["notice_version"]) == (
        "email_marketing",
        "granted",
        "import",
        "em-2026-01",
    )


def test_a_file_saved_from_excel_in_a_finnish_locale_imports_as_it_is(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    source = write_csv(
        tmp_path / "asiakkaat.csv",
        [
            ["id", "email", "first_name", "last_name", "phone", "company", "locale", "owner_id"],
            [
                "x-1",
                "paivi@jyvalab.example",
                "Päivi",
                "Mäkelä",
                "050 555 1002",
                "Jyväskylän Ympäristölaboratorio Oy",
                "suomi",
                "aino-virtanen",
            ],
            [
                "x-2",
                "linnea@borgamarin.example",
                "Linnéa",
                "Sjöholm",
                "",
                "Borgå Marinlab Ab",
                "svenska",
                "",
            ],
        ],
        encoding="cp1252",
        delimiter=";",
        lineterminator="\r\n",
    )
    code, out, err = run(env, "import", "customers", str(source))
    assert code == 0, err
    assert "asiakkaat.csv: the start of the file is not UTF-8; reading it as Windows-1252" in err
    assert "asiakkaat.csv: values are separated by ';'" in err
    assert "2 rows: 2 created" in out
    first = record(redis_url, "x-1")
    assert (first["first_name"], first["last_name"], first["company"], first["locale"]) == (
        "Päivi",
        "Mäkelä",
        "Jyväskylän Ympäristölaboratorio Oy",
        "fi",
    )
    assert record(redis_url, "x-2")["locale"] == "sv"

    # The same file saved as UTF-8 with a byte-order mark reads alike, without a warning.
    utf8 = tmp_path / "bom.csv"
    utf8.write_bytes(b"\xef\xbb\xbf" + source.read_text(encoding="cp1252").encode())
    code, out, err = run(env, "import", "customers", str(utf8))
    assert code == 0, err
    assert "not UTF-8" not in err
    assert "2 rows: 0 created, 0 updated, 2 unchanged" in out
    # A wrong guess is overridden: read as UTF-8, the Finnish letters are bad rows.
    code, out, err = run(
        env, "import", "customers", str(source), "--encoding", "utf-8", "--delimiter", ";",
        "--errors", str(tmp_path / "e.csv"),
    )  # fmt: skip
    assert code == 1
    assert "line 2: not valid in the file's encoding" in err
    assert "not UTF-8;" not in err


def test_any_other_export_is_mapped_with_columns_checked_before_anything_is_written(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    source = write_csv(
        tmp_path / "pipedrive.csv",
        [
            ["Person - ID", "Person - Email", "Person - Name", "Kieli", "Myyjä", "Segment"],
            ["p-1", "eero@kuopionmittaus.example", "Eero", "finska", "Aino Virtanen", "gold"],
        ],
        delimiter="\t",
    )
    before = snapshot(redis_url)
    for columns, reason in [
        ("Person - ID=id,Person - Email=mail", "'mail' is not a field: use id, email, "),
        ("Person - ID=id,Person - Email=consent_newsletter", "'newsletter' is not a consent"),
        ("Person - ID", "'Person - ID': expected 'Their header=field'"),
    ]:
        code, _, err = run(env, "import", "customers", str(source), "--columns", columns)
        assert (code, reason in err) == (2, True), err
    code, _, err = run(
        env, "import", "customers", str(source), "--columns",
        "Person - ID=id,Person - Mail=email",
    )  # fmt: skip
    assert code == 1
    assert "line 1: --columns names 'Person - Mail', not a column of this file" in err
    code, _, err = run(env, "import", "customers", str(source), "--columns", "Person - ID=id")
    assert code == 1
    assert "line 1: no column for email: map one with --columns 'Their header=email'" in err
    assert snapshot(redis_url) == before

    columns = (
        "person - id=id, Person - Email=email,Person - Name=first_name,Kieli=locale,"
        "Myyjä=owner,Segment=attr_segment"
    )
    code, _out, err = run(env, "import", "customers", str(source), "--columns", columns)
    assert code == 0, err
    assert "values are separated by tab" in err
    stored = record(redis_url, "p-1")
    assert (stored["first_name"], stored["locale"], stored["owner_id"]) == (
        "Eero",
        "fi",
        "aino-virtanen",
    )
    assert stored["attributes"] == {"segment": "gold"}


def test_owners_by_id_email_or_name_and_a_shared_name_is_not_guessed(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    namesake = tmp_path / "contacts.csv"
    namesake.write_text(
        "id,name,email,title_en\nemily-carter-2,Emily  CARTER,emily.c@kaamos.example,Trainee\n",
        encoding="utf-8",
    )
    assert run(env, "import", "contacts", str(namesake))[0] == 0
    source = write_csv(
        tmp_path / "crm.csv",
        [
            ["id", "email", "owner"],
            ["o-1", "o1@x.example", "johan-lindqvist"],
            ["o-2", "o2@x.example", "Aino.Virtanen@Kaamos.example"],
            ["o-3", "o3@x.example", "aino  virtanen"],
            ["o-4", "o4@x.example", "Emily Carter"],
            ["o-5", "o5@x.example", "Nobody Known"],
            ["o-6", "o6@x.example", ""],
        ],
    )
    report = tmp_path / "errors.csv"
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(report))
    assert code == 1
    assert "6 rows: 4 created, 0 updated, 0 unchanged, 2 bad" in out
    owners = {n: record(redis_url, f"o-{n}").get("owner_id") for n in (1, 2, 3, 6)}
    assert owners == {1: "johan-lindqvist", 2: "aino-virtanen", 3: "aino-virtanen", 6: None}
    assert (
        "crm.csv: line 5: owner: contact persons share this name: give the owner's email or "
        "contact id" in err
    )
    assert "crm.csv: line 6: owner: no contact person has this id, email or name" in err
    assert "Emily" not in err
    assert "Nobody" not in err
    with report.open(encoding="utf-8") as handle:
        assert [(r["line"], r["customer_id"]) for r in csv.DictReader(handle)] == [
            ("5", "o-4"),
            ("6", "o-5"),
        ]


def test_every_error_of_a_row_is_reported_and_an_empty_email_is_missing(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "crm.csv",
        [
            ["id", "email", "first_name", "phone", "locale", "job_title"],
            ["e-1", "", "Ok", "12", "klingon", "Engineer"],
            ["e-2", "not-an-email", "Tab\there", "+358 40 555 1001", "fi", "x" * 201],
        ],
    )
    code, out, err = run(env, "import", "customers", str(source), "--errors", str(tmp_path / "e"))
    assert code == 1
    assert "2 rows: 0 created, 0 updated, 0 unchanged, 2 bad" in out
    assert (
        "crm.csv: line 2: email: missing; phone: not a valid phone number (give it with a "
        "country code); locale: not a supported language (use fi, sv, en or a name such as "
        "Finnish, svenska, englanti)\n" in err
    )
    line3 = next(line for line in err.splitlines() if "line 3:" in line)
    assert "email: not a valid email address" in line3
    assert "first_name: must not contain control characters" in line3
    assert "job_title: Expected `str` of length <= 200" in line3
    assert "not-an-email" not in err
    assert "Tab" not in err


CRM_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "crm"


def test_the_example_exports_import_into_the_demo_data_as_documented(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert run(env, "import", "examples")[0] == 0
    for name, options, customer_id, owner in [
        ("hubspot-contacts.csv", ["--preset", "hubspot"], "90103", "emily-carter"),
        (
            "salesforce-contacts.csv",
            ["--preset", "salesforce"],
            "0035g00000Kaam02AAA",
            "johan-lindqvist",
        ),
        ("mailchimp-subscribed.csv", ["--preset", "mailchimp"], "8f3a1c77d2", None),
        ("excel-finnish-locale.csv", [], "xl-2009", "johan-lindqvist"),
    ]:
        source = str(CRM_EXAMPLES / name)
        code, out, err = run(env, "import", "customers", source, *options)
        assert code == 0, err
        assert " 0 bad;" in out
        assert record(redis_url, customer_id)["owner_id"] == owner
    assert record(redis_url, "xl-2009")["last_name"] == "Bäck"
    assert record(redis_url, "90102")["locale"] == "sv"


def test_standard_input_is_detected_too_and_wrong_options_are_said_before_reading(
    env: dict[str, str], redis_url: str, tmp_path: Path
) -> None:
    excel = "id;email;first_name\r\ns-1;s1@x.example;Jääskeläinen\r\n".encode("cp1252")
    result = CliRunner().invoke(main, ["import", "customers", "-"], env=env, input=excel)
    assert result.exit_code == 0, result.stderr
    assert "stdin: the start of the file is not UTF-8; reading it as Windows-1252" in result.stderr
    assert record(redis_url, "s-1")["first_name"] == "Jääskeläinen"

    source = write_csv(tmp_path / "crm.csv", [["id", "email"], ["c1", "c1@x.example"]])
    ndjson = tmp_path / "crm.ndjson"
    ndjson.write_text('{"id": "n1", "email": "n1@x.example"}\n', encoding="utf-8")
    for args, reason in [
        ([str(source), "--encoding", "klingon"], "'klingon' is not an encoding"),
        ([str(source), "--delimiter", "ab"], "'ab': give one character such as ; or , or 'tab'"),
        ([str(source), "--consent", "email_marketing=yes"], "expected PURPOSE=granted or"),
        ([str(source), "--consent", "newsletter=granted"], "'newsletter' is not a consent"),
        ([str(ndjson), "--preset", "hubspot"], "--preset and --columns read CSV exports"),
    ]:
        code, _, err = run(env, "import", "customers", *args)
        assert (code, reason in err) == (2, True), err
    assert record(redis_url, "s-1")  # and nothing else was written
    with sync_client(redis_url) as client:
        assert client.exists(customer_key("c1"), customer_key("n1")) == 0
