"""Phones as customers read them: national for a number of their own country, else
international; unchanged when it is not a valid number."""

from __future__ import annotations

import pytest

from prefill.models import Locale
from prefill.phones import display_phone


@pytest.mark.parametrize(
    ("number", "locale", "shown"),
    [
        ("+358401234567", "fi", "040 1234567"),
        ("+358920001000", "fi", "09 20001000"),
        # Swedish speakers of a Finnish company: most dial from Finland.
        ("+358401234567", "sv", "040 1234567"),
        # A Swedish number keeps its +46, which dials from Sweden and from Finland alike.
        ("+46701234567", "sv", "+46 70 123 45 67"),
        ("+46701234567", "fi", "+46 70 123 45 67"),
        # English names no country: international, which works wherever the customer is.
        ("+358401234567", "en", "+358 40 1234567"),
        ("+37255551005", "en", "+372 5555 1005"),
    ],
)
def test_national_at_home_international_otherwise(number: str, locale: Locale, shown: str) -> None:
    assert display_phone(number, locale) == shown


@pytest.mark.parametrize("number", ["", "+123", "not a number", "+35840"])
def test_what_is_not_a_valid_number_is_shown_as_stored(number: str) -> None:
    assert display_phone(number, "fi") == number
