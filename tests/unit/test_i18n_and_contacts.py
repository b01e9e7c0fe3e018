from __future__ import annotations

import pytest

from prefill.contacts import contact_for
from prefill.i18n import negotiate_locale, pick
from prefill.models import ContactPerson, Customer, Form


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("de-DE,sv;q=0.5,fi;q=0.4", "sv"),
        ("en;q=0.2, sv-FI", "sv"),
        ("fi;q=0, sv;q=0.1", "sv"),
        ("fi;q=abc, en", "en"),
        ("de, fr", "en"),
        ("sv, fi", "sv"),
    ],
)
def test_accept_language(header: str | None, locale: str) -> None:
    assert negotiate_locale(header) == locale


def test_pick_falls_back_to_english_then_anything() -> None:
    assert pick({"fi": "Hei", "en": "Hi"}, "sv") == "Hi"
    assert pick({"fi": "Hei"}, "sv") == "Hei"
    assert pick({}, "sv") == ""


def person(pid: str, active: bool = True, deputy: str | None = None) -> ContactPerson:
    return ContactPerson(
        id=pid,
        name=pid.title(),
        title={"en": "AM"},
        email=f"{pid}@kaamos.example",
        active=active,
        deputy_id=deputy,
    )


CONTACTS = {
    p.id: p
    for p in [
        person("aino"),
        person("pekka", active=False, deputy="aino"),
        person("gone", active=False, deputy="left-too"),
        person("left-too", active=False),
        person("loop-a", active=False, deputy="loop-b"),
        person("loop-b", active=False, deputy="loop-a"),
        person("team"),
    ]
}
FORM = Form(id="f", title={"en": "F"}, fields=[], fallback_contact_id="team")


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("aino", "aino"),
        ("pekka", "aino"),
        ("gone", "team"),
        ("loop-a", "team"),
        (None, "team"),
        ("nobody", "team"),
    ],
)
def test_contact_person_with_deputy_and_fallback(owner: str | None, expected: str) -> None:
    customer = Customer(id="c", email="c@x.example", owner_id=owner)
    found = contact_for(customer, FORM, CONTACTS)
    assert found is not None
    assert found.id == expected


def test_no_contact_at_all() -> None:
    customer = Customer(id="c", email="c@x.example")
    assert contact_for(customer, None, CONTACTS) is None
