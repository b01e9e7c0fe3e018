"""Phone numbers as a customer reads them: stored E.164, shown in the customer's national format
when the number is of their country, otherwise in the international format (which works from
anywhere). `tel:` links keep E.164."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

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
    if number is not None and is_valid(number):
        return number
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    return number if is_valid(number) else None


def is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """`phonenumbers.is_valid_number`'s answer (tested against it), from patterns compiled
    once per region: it looks each pattern up by its text, and matches one type after another
    to name the type, where validity needs only whether any matches (9 -> 2-3 µs a number)."""
    code = number.country_code
    if code is None:
        return False
    return _is_valid(code, phonenumbers.national_significant_number(number))


def is_valid_e164(value: str) -> bool:
    """Whether `value` is a valid number written in E.164: then it is its own E.164, with no
    number object made, checked and formatted back into the same text."""
    parts = _e164_parts(value)
    return parts is not None and _is_valid(*parts)


def _is_valid(code: int, national: str) -> bool:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
    if not regions:
        return False
    if len(regions) == 1:
        checks = _checks(regions[0], code)
        return checks is not None and checks.valid(national)
    for region in regions:  # as phonenumbers finds the region of a shared country code
        checks = _checks(region, code)
        if checks is None:
            continue
        if checks.leading_digits is not None:
            if checks.leading_digits(national):
                return checks.valid(national)
        elif checks.valid(national):
            return True
    return False


_Desc = tuple[frozenset[int], Callable[[str], re.Match[str] | None]]
"""A kind of number's possible lengths (none: any) and its pattern's fullmatch."""
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
"""The kinds of number phonenumbers' number_type tries: a number of none of them is invalid."""


class _Checks(NamedTuple):
    general: _Desc | None
    types: tuple[tuple[frozenset[int], str], ...]
    """Each kind's possible lengths (none: any) and pattern."""
    leading_digits: Callable[[str], re.Match[str] | None] | None
    of_length: dict[int, Callable[[str], re.Match[str] | None]]
    """The patterns of the kinds a number of a length may be, as one alternation (filled
    as lengths come): one match instead of one per kind."""

    def valid(self, national: str) -> bool:
        if not _matches(self.general, national):
            return False
        length = len(national)
        kinds = self.of_length.get(length)
        if kinds is None:
            patterns = [
                f"(?:{pattern})"
                for lengths, pattern in self.types
                if not lengths or length in lengths
            ]
            alternation = re.compile("|".join(patterns)).fullmatch if patterns else _never
            kinds = self.of_length[length] = alternation
        return kinds(national) is not None


def _never(national: str) -> None:
    return None


def _matches(desc: _Desc | None, national: str) -> bool:
    if desc is None:
        return False
    lengths, fullmatch = desc
    return (not lengths or len(national) in lengths) and fullmatch(national) is not None


@functools.cache
def _checks(region: str, country_code: int) -> _Checks | None:
    metadata = (
        PhoneMetadata.metadata_for_nongeo_region(country_code, None)
        if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        else PhoneMetadata.metadata_for_region(region, None)
    )
    if metadata is None:
        return None
    kinds = (getattr(metadata, kind) for kind in _TYPES)
    leading = metadata.leading_digits
    return _Checks(
        _desc(metadata.general_desc),
        tuple(
            (frozenset(kind.possible_length), kind.national_number_pattern)
            for kind in kinds
            if kind is not None and kind.national_number_pattern
        ),
        None if leading is None else re.compile(leading).match,
        {},
    )


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern).fullmatch


_E164 = re.compile(r"\+([1-9][0-9]{6,14})")


def _as_written_in_e164(value: str) -> phonenumbers.PhoneNumber | None:
    """The number of a value written in E.164 already (as stored, and as most CRMs export),
    without phonenumbers' general parser, which takes three quarters of a check's time (see
    `_e164_parts`). Otherwise None, and the parser decides."""
    parts = _e164_parts(value)
    if parts is None:
        return None
    code, national = parts
    return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))


def _e164_parts(value: str) -> tuple[int, str] | None:
    """The country code and national number of a value written in E.164, only where the
    parser could read it no other way: the country code is the first one the digits start
    with (calling codes are prefix-free, as the parser takes them), and the rest neither
    starts with 0 nor with anything the country's national prefix could be stripped from."""
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
    if national.startswith("0") or _parser_may_strip(code)(national):
        return None
    return code, national


@functools.cache
def _parser_may_strip(code: int) -> Callable[[str], object]:
    """Whether the parser may read a national number of the country code otherwise: it starts
    with what the national prefix of the code's main region matches, or that region has no
    metadata to say (compiled once a code, not looked up by its text each number)."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region(region) if region != "001" else None
    if metadata is None:
        return lambda national: True
    prefix = metadata.national_prefix_for_parsing
    return (lambda national: False) if prefix is None else re.compile(prefix).match


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
