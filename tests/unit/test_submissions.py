"""Validation and normalisation of a submitted form, without I/O."""

from __future__ import annotations

import json

import msgspec
import pytest

from prefill.imports import parse_forms
from prefill.models import Customer, Form
from prefill.submissions import (
    BAD_EMAIL,
    BAD_OPTION,
    BAD_PHONE,
    BAD_SCALE,
    REQUIRED,
    TOO_LONG,
    Accepted,
    FieldError,
    Rejected,
    changed_fields,
    new_lead,
    normalise_phone,
    updated_record,
    validate,
)
from tests.conftest import EXAMPLES

VALID = {
    "first_name": "Matti",
    "last_name": "Korhonen",
    "email": "Matti.Korhonen@Lampo.example",
    "phone": "040 555 1001",
    "diet": "vegan",
}


@pytest.fixture
def form() -> Form:
    registration, _feedback = parse_forms((EXAMPLES / "forms.json").read_bytes())
    return registration


def test_a_valid_submission_is_normalised(form: Form) -> None:
    posted = VALID | {"consent_email_marketing": "em-2026-01"}
    result = validate(form, posted)
    assert isinstance(result, Accepted)
    assert result.values["email"] == "matti.korhonen@lampo.example"
    assert result.values["phone"] == "+358405551001"
    assert result.consents == {"email_marketing": "em-2026-01"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "", REQUIRED),
        ("email", "matti@", BAD_EMAIL),
        ("email", "matti korhonen@lampo.example", BAD_EMAIL),
        ("phone", "12", BAD_PHONE),
        ("phone", "+358 40", BAD_PHONE),
        ("diet", "carnivore", BAD_OPTION),
        ("company", "x" * 201, TOO_LONG),
    ],
)
def test_each_bad_value_gets_its_own_message(
    form: Form, field: str, value: str, message: str
) -> None:
    result = validate(form, VALID | {field: value})
    assert isinstance(result, Rejected)
    assert list(result.errors) == [field]
    assert result.errors[field].message == message
    assert result.typed[field] == value.strip()
    assert result.typed["last_name"] == "Korhonen"  # everything else is kept too


def test_swedish_numbers_keep_their_country_code(form: Form) -> None:
    assert normalise_phone("+46 70 123 45 67", "FI") == "+46701234567"
    assert isinstance(validate(form, VALID | {"phone": "+46 70 123 45 67"}), Accepted)


def test_a_consent_box_counts_only_with_the_notice_version_shown(form: Form) -> None:
    result = validate(form, VALID | {"consent_email_marketing": "em-1999-01"})
    assert isinstance(result, Accepted)
    assert result.consents == {}


def test_a_masked_value_sent_back_unchanged_keeps_the_stored_one(form: Form) -> None:
    stored = Customer(id="c1", email="matti.korhonen@lampo.example", phone="+358405551001")
    result = validate(form, VALID | {"email": "m•••@lampo.example", "phone": "+358•••01"})
    assert isinstance(result, Accepted)
    assert "email" not in result.values
    after = updated_record(form, stored, result.values)
    assert (after.email, after.phone) == (stored.email, stored.phone)
    assert after.first_name == "Matti"
    assert after.attributes["diet"] == "vegan"
    assert changed_fields(form, stored, after) == ["diet", "first_name", "last_name"]


def test_a_lead_needs_an_email(form: Form) -> None:
    without = {k: v for k, v in VALID.items() if k != "email"}
    result = validate(form, without | {"email": ""})
    assert isinstance(result, Rejected)  # the field is required in this form
    data = json.loads((EXAMPLES / "forms.json").read_text())[0]
    for field in data["fields"]:
        field["required"] = field["name"] != "email" and field.get("required", False)
    (relaxed,) = parse_forms(json.dumps([data]).encode())
    accepted = validate(relaxed, without)
    assert isinstance(accepted, Accepted)
    lead = new_lead(relaxed, accepted, without, "fi")
    assert isinstance(lead, Rejected)
    assert list(lead.errors) == ["email"]
    good = validate(relaxed, VALID)
    assert isinstance(good, Accepted)
    made = new_lead(relaxed, good, VALID, "fi")
    assert isinstance(made, Customer)
    assert made.id.startswith("lead-")
    assert made.email == "matti.korhonen@lampo.example"


def test_no_value_longer_than_its_attribute_can_hold_is_accepted(form: Form) -> None:
    roomy = msgspec.structs.replace(
        form,
        fields=[
            msgspec.structs.replace(f, max_length=1000) if f.name == "company" else f
            for f in form.fields
        ],
    )
    result = validate(roomy, VALID | {"company": "x" * 300})
    assert isinstance(result, Rejected)
    assert result.errors["company"] == FieldError(TOO_LONG, {"max": "200"})


@pytest.fixture
def feedback() -> Form:
    _registration, feedback = parse_forms((EXAMPLES / "forms.json").read_bytes())
    return feedback


@pytest.mark.parametrize(("overall", "recommend"), [("1", "0"), ("5", "10"), (" 3 ", "07")])
def test_ratings_and_nps_on_their_scales_are_accepted(
    feedback: Form, overall: str, recommend: str
) -> None:
    posted = {"email": "a@b.example", "overall": overall, "recommend": recommend}
    checked = validate(feedback, posted)
    assert isinstance(checked, Accepted)
    assert checked.values["overall"] == str(int(overall))
    assert checked.values["recommend"] == str(int(recommend))


@pytest.mark.parametrize(
    ("field", "value", "low", "high"),
    [
        ("overall", "0", "1", "5"),
        ("overall", "6", "1", "5"),
        ("overall", "4.5", "1", "5"),
        ("overall", "-1", "1", "5"),
        ("recommend", "11", "0", "10"),
        ("recommend", "\u0669", "0", "10"),  # an Arabic-Indic nine: a digit, not on our scale
        ("recommend", "ten", "0", "10"),
    ],
)
def test_an_answer_off_the_scale_is_refused_naming_the_scale(
    feedback: Form, field: str, value: str, low: str, high: str
) -> None:
    posted = {"email": "a@b.example", "overall": "4", "recommend": "9", field: value}
    checked = validate(feedback, posted)
    assert isinstance(checked, Rejected)
    assert checked.errors == {field: FieldError(BAD_SCALE, {"low": low, "high": high})}
    assert checked.typed[field] == value.strip()


def test_a_required_rating_left_empty_is_required(feedback: Form) -> None:
    checked = validate(feedback, {"email": "a@b.example", "recommend": "9"})
    assert isinstance(checked, Rejected)
    assert checked.errors == {"overall": FieldError(REQUIRED)}
