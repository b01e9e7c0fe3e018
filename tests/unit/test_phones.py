"""Phones as customers read them: national for a number of the country they dial from, else
international; unchanged when it is not a valid number."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from prefill.models import Customer, Locale
from prefill.phones import display_phone, home_country, is_valid, is_valid_e164, valid_number
from prefill.submissions import normalise_phone


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


def test_a_number_written_in_e164_normalises_to_what_phonenumbers_formats() -> None:
    # A valid number written in E.164 is returned as written, unparsed: it must be exactly
    # what parsing and formatting it gives, and every other value must take the parser.
    taken = 0
    for written in _examples():
        try:
            parsed = phonenumbers.parse(written, None)
            valid = phonenumbers.is_valid_number(parsed)
        except phonenumbers.NumberParseException:
            valid = False
        expected = phonenumbers.format_number(parsed, 0) if valid else None
        assert normalise_phone(written, "FI") == expected, written
        taken += is_valid_e164(written)
        assert not is_valid_e164(written) or written == expected, written
    assert taken > 1000  # the fast path answers for most examples


def test_a_number_is_valid_exactly_where_phonenumbers_says_it_is() -> None:
    # Each region's patterns compiled once must give phonenumbers' own answer: on every
    # example number and its variants, and on random digits after every country code
    # (shared ones like +1 and +358, and those of no country, like +800, among them).
    rng = random.Random(14)
    numbers = [phonenumbers.parse(written, None) for written in _parsable(_examples())]
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for length in range(4, 14):
            for _ in range(20):
                digits = rng.randrange(10 ** (length - 1), 10**length)
                numbers.append(phonenumbers.PhoneNumber(country_code=code, national_number=digits))
    valid = [phonenumbers.is_valid_number(number) for number in numbers]
    assert 3000 < sum(valid) < len(numbers) - 3000  # both answers, many times
    assert [is_valid(number) for number in numbers] == valid


def _parsable(written: list[str]) -> list[str]:
    parsable = []
    for number in written:
        try:
            phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            continue
        parsable.append(number)
    return parsable
