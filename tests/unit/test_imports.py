from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefill.imports import (
    ImportRejected,
    check_references,
    parse_campaigns,
    parse_contacts,
    parse_customers,
    parse_forms,
)
from prefill.models import ConsentAction

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = "id,email,first_name,locale,owner_id,consent_personalization,attr_diet\n"


def problems(exc: pytest.ExceptionInfo[ImportRejected]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_the_examples_parse() -> None:
    customers = parse_customers((EXAMPLES / "customers.csv").read_text(encoding="utf-8"))
    contacts, photos = parse_contacts(
        (EXAMPLES / "contacts.csv").read_text(encoding="utf-8"), EXAMPLES / "photos"
    )
    forms = parse_forms((EXAMPLES / "forms.json").read_bytes())
    campaigns = parse_campaigns((EXAMPLES / "campaigns.csv").read_text(encoding="utf-8"))
    assert {c.locale for c in customers.customers} == {"fi", "sv", "en"}
    assert set(photos) <= {c.id for c in contacts}
    assert all(photo.startswith(b"\xff\xd8") for photo in photos.values())
    assert check_references(forms, campaigns, contacts, set(), set()) == []


def test_customer_columns_become_attributes_and_consents() -> None:
    parsed = parse_customers(HEADER + "c1,Matti@Lampo.Example,Matti,fi,aino,granted,vegan\n")
    (customer,) = parsed.customers
    assert customer.email == "matti@lampo.example"
    assert customer.attributes == {"diet": "vegan"}
    assert parsed.consents == {"c1": {"personalization": ConsentAction.GRANTED}}


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_returned() -> None:
    text = (
        HEADER
        + "c1,ok@x.example,A,fi,,granted,\n"  # line 2: fine
        + "c2,not-an-email,B,fi,,,\n"  # line 3
        + "c3,c3@x.example,C,de,,,\n"  # line 4
        + "c4,c4@x.example,D,fi,,maybe,\n"  # line 5
        + "c1,dup@x.example,E,fi,,,\n"  # line 6
        + "c5,c5@x.example,F,fi,,,,surplus\n"  # line 7
        + "bad id!,c6@x.example,G,fi,,,\n"  # line 8
    )
    with pytest.raises(ImportRejected) as exc:
        parse_customers(text)
    reported = problems(exc)
    assert [r.split(":")[0] for r in reported] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert reported[0] == "line 3: email: not a valid email address"
    assert reported[1] == (
        "line 4: locale: not a supported language (use fi, sv, en or a name such as Finnish, "
        "svenska, englanti)"
    )
    assert "consent_personalization" in reported[2]
    assert "duplicate id 'c1' (first on line 2)" in reported[3]
    assert "more values than columns" in reported[4]
    assert reported[5] == (
        "line 8: id: use only letters, digits, '_', '.' and '-', at most 64 characters"
    )


def test_a_quote_left_open_is_reported_with_the_lines_it_swallowed() -> None:
    text = (
        HEADER
        + 'c1,a@x.example,"Open quote,fi,,,\n'  # line 2
        + "c2,b@x.example,B,fi,,,\n"  # line 3, read as part of line 2's value
        + 'c3,c@x.example,C" ,fi,,,\n'  # line 4, where the quote closes
        + "c4,bad,D,fi,,,\n"  # line 5
    )
    with pytest.raises(ImportRejected) as exc:
        parse_customers(text)
    assert problems(exc) == [
        "line 2: lines 2-4 read as one row: is a quote left open on line 2?",
        "line 5: email: not a valid email address",
    ]


def test_missing_required_columns() -> None:
    with pytest.raises(ImportRejected) as exc:
        parse_customers("id,name\nc1,x\n")
    assert problems(exc) == ["line 1: missing column(s): email"]


def test_contacts_photo_must_be_a_jpeg_in_the_folder(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_bytes(b"GIF89a")
    header = "id,name,title_en,email,photo\n"
    text = (
        header
        + "a,A,AM,a@k.example,fake.jpg\nb,B,AM,b@k.example,../etc/passwd\n"
        + "c,C,AM,c@k.example,missing.jpg\n"
    )
    with pytest.raises(ImportRejected) as exc:
        parse_contacts(text, tmp_path)
    reported = problems(exc)
    assert [r.split(":")[0] for r in reported] == ["line 2", "line 3", "line 4"]
    assert "JPEG" in reported[0]


def test_forms_json_errors_name_the_form_and_field() -> None:
    with pytest.raises(ImportRejected) as exc:
        parse_forms(b'[{"id": "f", "title": {"en": "F"}, "fields": [{"name": "x"}]}]')
    assert "form #1" in problems(exc)[0]
    assert "label" in problems(exc)[0]
    with pytest.raises(ImportRejected) as exc:
        parse_forms(b"{not json")
    assert "not valid JSON" in problems(exc)[0]


def test_campaign_errors() -> None:
    with pytest.raises(ImportRejected) as exc:
        parse_campaigns("id,form_id,link_lifetime_days,state\nc,f,0,active\nd,f,5,paused\n")
    reported = problems(exc)
    assert reported[0].startswith("line 2:")
    assert "link_lifetime_days" in reported[0]
    assert reported[1].startswith("line 3:")


def test_forms_must_name_real_attributes_and_origins() -> None:
    form = (
        b'[{"id": "f", "title": {"en": "F"}, "allowed_origins": ["https://ok.example", "*"],'
        b' "fields": [{"name": "x", "label": {"en": "X"}, "prefill_from": "password"}]}]'
    )
    with pytest.raises(ImportRejected) as exc:
        parse_forms(form)
    (reported,) = problems(exc)
    assert "prefill_from" in reported or "allowed_origins" in reported


def test_consent_columns_must_name_known_purposes_and_other_columns_known_fields() -> None:
    with pytest.raises(ImportRejected) as exc:
        parse_customers("id,email,consent_newsletter,nickname\nc1,a@x.example,granted,x\n")
    assert problems(exc) == [
        "line 1: consent_newsletter: 'newsletter' is not a consent purpose "
        "(personalization, email_marketing); unknown column 'nickname' (free attributes are "
        "attr_<name>; a CRM's own headers are mapped with --preset or --columns)"
    ]


def test_an_event_that_ends_before_it_starts_and_a_prefilled_rating_are_named() -> None:
    forms = [
        {
            "id": "f",
            "title": {"en": "F"},
            "fields": [{"name": "email", "label": {"en": "E"}, "prefill_from": "email"}],
            "event": {
                "start": "2027-04-15T16:00:00",
                "end": "2027-04-15T09:00:00",
                "time_zone": "Europe/Helsinki",
            },
        },
        {
            "id": "g",
            "title": {"en": "G"},
            "fields": [
                {"name": "email", "label": {"en": "E"}, "prefill_from": "email"},
                {"name": "score", "label": {"en": "S"}, "type": "nps", "prefill_from": "company"},
            ],
        },
    ]
    with pytest.raises(ImportRejected) as exc:
        parse_forms(json.dumps(forms).encode())
    assert problems(exc) == [
        "line 1: form #1: event: the event must end after it starts",
        "line 2: form #2: field 'score': a nps answer is the customer's own, never prefilled",
    ]
