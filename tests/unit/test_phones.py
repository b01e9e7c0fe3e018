"""Phones as customers read them: national for a number of the country they dial from, else
international; unchanged when it is not a valid number."""

from __future__ import annotations

import phonenumbers
import pytest

from prefill.models import Customer, Locale
from prefill.phones import display_phone, home_country, valid_number


@pytest.mark.parametrize(
    ("locale", "phone", "country"),
    [
        ("fi", "", "FI"),
        # Swedish speakers of a Finnish company mostly dial from Finland...
        ("sv", "", "FI"),
        ("sv", "+358405551003", "FI"),
        # ...unless their own number says they are in Sweden.
        ("sv", "+46701234567", "SE"),
        ("fi", "+37255551005", "EE"),
        # English names no country: only the customer's own number can.
        ("en", "", None),
        ("en", "+353875551006", "IE"),
        ("en", "+358405551001", "FI"),
        ("fi", "not a number", "FI"),
    ],
)
def test_the_country_a_customer_dials_from(locale: Locale, phone: str, country: str) -> None:
    customer = Customer(id="c", email="c@example.fi", locale=locale, phone=phone)
    assert home_country(customer) == country


@pytest.mark.parametrize(
    ("number", "country", "shown"),
    [
        ("+358401234567", "FI", "040 1234567"),
        ("+358920001000", "FI", "09 20001000"),
        ("+46701234567", "SE", "070-123 45 67"),
        # A number from elsewhere keeps its country code, which dials from anywhere.
        ("+46701234567", "FI", "+46 70 123 45 67"),
        ("+358401234567", "EE", "+358 40 1234567"),
        ("+358401234567", None, "+358 40 1234567"),
    ],
)
def test_national_at_home_international_otherwise(
    number: str, country: str | None, shown: str
) -> None:
    assert display_phone(number, country) == shown


@pytest.mark.parametrize("number", ["", "+123", "not a number", "+35840"])
def test_what_is_not_a_valid_number_is_shown_as_stored(number: str) -> None:
    assert display_phone(number, "FI") == number


def _examples() -> list[str]:
    """Every region's example numbers of every type in E.164, and each also with a digit more,
    a digit less, a 0 after the country code, and its country's national prefix there."""
    written = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        for kind in phonenumbers.PhoneNumberType.values():
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            code = f"+{number.country_code}"
            national = e164.removeprefix(code)
            prefix = (metadata.national_prefix if metadata else None) or ""
            written |= {e164, e164 + "5", e164[:-1], f"{code}0{national}"}
            written.add(f"{code}{prefix}{national}")
    return sorted(written)


def test_a_number_written_in_e164_reads_as_phonenumbers_reads_it() -> None:
    # The fast path for E.164 must agree with the general parser on every number it takes.
    examples = _examples()
    assert len(examples) > 3000
    for written in examples:
        try:
            parsed = phonenumbers.parse(written, None)
            expected = parsed if phonenumbers.is_valid_number(parsed) else None
        except phonenumbers.NumberParseException:
            expected = None
        assert valid_number(written, "FI") == expected, written
