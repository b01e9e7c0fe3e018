from __future__ import annotations

import msgspec
import pytest

from prefill.consent import (
    ConsentShown,
    consent_refusal,
    consent_states,
    current_consent,
    disclosable_values,
    greeting_name,
    import_may_record,
    mask_value,
    truncate_ip,
)
from prefill.i18n import long_date
from prefill.models import (
    ConsentAction,
    ConsentEvent,
    ConsentNotice,
    ConsentSource,
    Customer,
    FieldOption,
    Form,
    FormField,
)
from prefill.tokens import RefusalCause

GRANTED, WITHDRAWN = ConsentAction.GRANTED, ConsentAction.WITHDRAWN


def event(purpose: str, action: ConsentAction, at: float) -> ConsentEvent:
    return ConsentEvent(purpose=purpose, action=action, at=at, source=ConsentSource.ADMIN)


def test_current_consent_is_the_latest_event_per_purpose() -> None:
    history = [
        event("personalization", GRANTED, 1),
        event("email_marketing", GRANTED, 2),
        event("personalization", WITHDRAWN, 3),
        event("personalization", GRANTED, 4),
        event("email_marketing", WITHDRAWN, 5),
    ]
    state = current_consent(history)
    assert state["personalization"].action is GRANTED
    assert state["email_marketing"].action is WITHDRAWN


def test_current_consent_follows_recording_order_not_clocks() -> None:
    # An instance with a slow clock recorded the grant after the withdrawal.
    state = current_consent([event("p", WITHDRAWN, 9), event("p", GRANTED, 3)])
    assert state["p"].action is GRANTED


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], RefusalCause.CONSENT_MISSING),
        ([event("other", GRANTED, 1)], RefusalCause.CONSENT_MISSING),
        ([event("personalization", WITHDRAWN, 1)], RefusalCause.CONSENT_WITHDRAWN),
        ([event("personalization", GRANTED, 1)], None),
        (
            [event("personalization", GRANTED, 1), event("personalization", WITHDRAWN, 2)],
            RefusalCause.CONSENT_WITHDRAWN,
        ),
    ],
)
def test_only_a_current_grant_for_the_purpose_allows_disclosure(
    history: list[ConsentEvent], expected: RefusalCause | None
) -> None:
    assert consent_refusal(current_consent(history), "personalization") is expected


FORM = Form(
    id="f",
    title={"en": "F"},
    fields=[
        FormField(name="first_name", label={"en": "First"}, prefill_from="first_name"),
        FormField(
            name="email", label={"en": "Email"}, type="email", prefill_from="email", masked=True
        ),
        FormField(
            name="phone", label={"en": "Phone"}, type="tel", prefill_from="phone", masked=True
        ),
        FormField(name="company", label={"en": "Company"}, prefill_from="company", prefill=False),
        FormField(
            name="diet",
            label={"en": "Diet"},
            type="select",
            prefill_from="attributes.diet",
            options=[FieldOption(value="vegan", label={"en": "Vegan"})],
        ),
        FormField(name="notes", label={"en": "Notes"}),
    ],
)


def customer(**changes: object) -> Customer:
    values: dict[str, object] = {
        "id": "c1",
        "email": "matti.korhonen@lampo.example",
        "first_name": "Matti",
        "phone": "+358405551001",
        "company": "Lämpö Oy",
        "attributes": {"diet": "vegan"},
    }
    values.update(changes)
    return Customer(**values)  # type: ignore[arg-type]


def test_only_prefillable_fields_are_disclosed_and_masked_fields_masked() -> None:
    values = disclosable_values(FORM, customer())
    assert values == {
        "first_name": "Matti",
        "email": "m•••@lampo.example",
        "phone": "+358•••01",
        "diet": "vegan",
    }
    assert "Lämpö Oy" not in values.values()  # prefill=False
    assert "notes" not in values  # no source attribute


def test_a_stale_select_value_is_not_disclosed() -> None:
    assert "diet" not in disclosable_values(FORM, customer(attributes={"diet": "carnivore"}))


def test_empty_values_are_left_out() -> None:
    assert "phone" not in disclosable_values(FORM, customer(phone=""))


def test_unknown_attribute_names_disclose_nothing() -> None:
    form = Form(
        id="f",
        title={"en": "F"},
        fields=[
            FormField(name="x", label={"en": "X"}, prefill_from="generation"),
            FormField(name="y", label={"en": "Y"}, prefill_from="id"),
        ],
    )
    assert disclosable_values(form, customer()) == {}


def field_by_field(form: Form, person: Customer) -> dict[str, str]:
    """What disclosable_values gives, as the policy reads: each field asks the customer."""
    values = {}
    for field in form.fields:
        if not field.prefill or field.prefill_from is None:
            continue
        value = person.attribute(field.prefill_from)
        if field.type == "select" and value not in {o.value for o in field.options}:
            continue
        if value:
            values[field.name] = mask_value(field, value) if field.masked else value
    return values


SOURCES = ["first_name", "email", "phone", "job_title", "attributes.diet", "attributes.", "locale"]


@pytest.mark.parametrize("kind", ["text", "email", "tel", "select"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("prefill", [False, True])
def test_each_field_discloses_what_the_customers_attribute_gives(
    kind: str, masked: bool, prefill: bool
) -> None:
    options = [FieldOption(value=v, label={"en": v}) for v in ("vegan", "+358405551001", "")]
    form = Form(
        id="f",
        title={"en": "F"},
        fields=[
            FormField(
                name=f"x{i}",
                label={"en": "X"},
                type=kind,  # type: ignore[arg-type]
                prefill_from=source,
                prefill=prefill,
                masked=masked,
                options=options,
            )
            for i, source in enumerate(SOURCES)
        ],
    )
    people = [
        customer(),
        customer(phone="", attributes={}),
        customer(attributes={"diet": "carnivore", "": "vegan"}, job_title="vegan"),
    ]
    for person in people:
        assert disclosable_values(form, person) == field_by_field(form, person)


def test_a_forms_fields_are_read_again_for_a_new_form_and_values_for_each_customer() -> None:
    assert disclosable_values(FORM, customer())["first_name"] == "Matti"
    assert disclosable_values(FORM, customer(first_name="Aino"))["first_name"] == "Aino"
    changed = msgspec.structs.replace(FORM, fields=FORM.fields[:1])
    assert disclosable_values(changed, customer()) == {"first_name": "Matti"}
    assert "email" in disclosable_values(FORM, customer())


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("email", "a@b.example", "a•••@b.example"),
        ("tel", "+358401234567", "+358•••67"),
        ("tel", "12345", "•••"),
        ("text", "Secret", "S•••"),
    ],
)
def test_masks(kind: str, value: str, masked: str) -> None:
    field = FormField(name="f", label={"en": "F"}, type=kind)  # type: ignore[arg-type]
    assert mask_value(field, value) == masked


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("not an ip", ""),
    ],
)
def test_evidence_addresses_are_truncated(address: str, prefix: str) -> None:
    assert truncate_ip(address) == prefix


@pytest.mark.parametrize(
    ("existing", "imported", "recorded"),
    [
        (None, GRANTED, True),
        (None, WITHDRAWN, True),
        (GRANTED, GRANTED, False),
        (WITHDRAWN, WITHDRAWN, False),
        (GRANTED, WITHDRAWN, True),
        (WITHDRAWN, GRANTED, False),  # a stale CRM export must not undo a withdrawal
    ],
)
def test_an_import_never_regrants_a_withdrawal(
    existing: ConsentAction | None, imported: ConsentAction, recorded: bool
) -> None:
    current = event("p", existing, 1) if existing else None
    assert import_may_record(current, imported) is recorded


def test_greeting_uses_the_first_name_only_when_the_form_shows_it_in_full() -> None:
    assert greeting_name(FORM, disclosable_values(FORM, customer())) == "Matti"
    masked = Form(
        id="f",
        title={"en": "F"},
        fields=[
            FormField(name="first_name", label={"en": "F"}, prefill_from="first_name", masked=True)
        ],
    )
    assert greeting_name(masked, disclosable_values(masked, customer())) == ""
    nameless = Form(id="f", title={"en": "F"}, fields=[])
    assert greeting_name(nameless, disclosable_values(nameless, customer())) == ""


def test_consent_states_are_those_the_form_asks_for_as_they_stand_now() -> None:
    form = Form(
        id="f",
        title={"en": "F"},
        fields=[FormField(name="first_name", label={"en": "First name"})],
        consents=[
            ConsentNotice(purpose="email_marketing", version="em-1", text={"en": "Mail me"}),
            ConsentNotice(purpose="phone_marketing", version="pm-1", text={"en": "Call me"}),
            ConsentNotice(purpose="surveys", version="s-1", text={"en": "Ask me"}),
        ],
    )
    consents = current_consent(
        [
            event("email_marketing", GRANTED, 10),
            event("phone_marketing", GRANTED, 11),
            event("phone_marketing", WITHDRAWN, 12),
            event("personalization", GRANTED, 13),  # not a box of this form: not shown
        ]
    )
    assert consent_states(form, consents) == {
        "email_marketing": ConsentShown(granted=True, at=10),
        "phone_marketing": ConsentShown(granted=False, at=12),
    }


@pytest.mark.parametrize(
    ("locale", "text"),
    [("fi", "3. maaliskuuta 2026"), ("sv", "3 mars 2026"), ("en", "3 March 2026")],
)
def test_a_date_is_written_as_the_page_language_writes_it(locale: str, text: str) -> None:
    assert long_date(1_772_539_200, locale) == text  # type: ignore[arg-type]
