"""Phone numbers as a customer reads them: stored E.164, shown in the customer's national format
when the number is of their country, otherwise in the international format (which works from
anywhere). `tel:` links keep E.164."""

from __future__ import annotations

import phonenumbers

from prefill.models import Locale

HOME_COUNTRY: dict[Locale, str | None] = {"fi": "FI", "sv": "FI", "en": None}
"""The country a customer of this language most likely dials from. The company is Finnish:
its Swedish-speaking customers are mostly Finland-Swedes (as submissions.PHONE_REGION assumes),
so a Swedish number is shown to them with +46, which is right in Sweden too. English says
nothing about a country: numbers are shown in the international format."""


def valid_number(value: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """The number `value` is, if it is a valid one; `region` is assumed without a country
    code."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def display_phone(number: str, locale: Locale) -> str:
    """`number` (E.164) formatted for a customer of `locale`; an invalid one unchanged."""
    parsed = valid_number(number, None)
    if parsed is None:
        return number
    national = phonenumbers.region_code_for_number(parsed) == HOME_COUNTRY[locale]
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if national
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)
