"""Phone numbers as a customer reads them: stored E.164, shown in the customer's national format
when the number is of their country, otherwise in the international format (which works from
anywhere). `tel:` links keep E.164."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata

from prefill.models import Customer, Locale

LANGUAGE_COUNTRY: dict[Locale, str | None] = {"fi": "FI", "sv": "FI", "en": None}
"""The country a customer of this language most likely dials from, when their own number does
not say. The company is Finnish: its Swedish-speaking customers are mostly Finland-Swedes (as
submissions.PHONE_REGION assumes), and a Swedish number shown to them with +46 is right in
Sweden too. English says nothing about a country: numbers are shown internationally."""


def home_country(customer: Customer) -> str | None:
    """The country a customer dials from: their own phone number's (a Swedish speaker with a
    +46 number is in Sweden, a Finn with a +372 one in Estonia), else their language's."""
    own = valid_number(customer.phone, None) if customer.phone else None
    region = phonenumbers.region_code_for_number(own) if own is not None else None
    return region or LANGUAGE_COUNTRY[customer.locale]


def valid_number(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """The number `value` is, if it is a valid one; `region` is assumed without a country
    code."""
    number = _as_written_in_e164(value)
    if number is not None and phonenumbers.is_valid_number(number):
        return number
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


_E164 = re.compile(r"\+([1-9][0-9]{6,14})")


def _as_written_in_e164(value: str) -> phonenumbers.PhoneNumber | None:
    """The number of a value written in E.164 already (as stored, and as most CRMs export),
    without phonenumbers' general parser, which takes three quarters of a check's time. Only
    where that parser could read it no other way: the country code is the first one the
    digits start with (calling codes are prefix-free, as the parser takes them), and the rest
    neither starts with 0 nor with anything the country's national prefix could be stripped
    from. Otherwise None, and the parser decides."""
    written = _E164.fullmatch(value)
    if written is None:
        return None
    digits = written.group(1)
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region(region) if region != "001" else None
    if metadata is None or national.startswith("0"):
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix is not None and re.match(prefix, national):
        return None
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


def display_phone(number: str, country: str | None) -> str:
    """`number` (E.164) as a customer in `country` (ISO 3166 code, None when unknown) dials it:
    national if it is of that country, else international; an invalid one unchanged."""
    parsed = valid_number(number, None)
    if parsed is None:
        return number
    national = country is not None and phonenumbers.region_code_for_number(parsed) == country
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if national
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)
