"""A customer's language from what a CRM writes: a code (fi, fi-FI, sv_FI) or a name in Finnish,
Swedish or English ("Finnish", "suomi", "finska", "English (United Kingdom)")."""

from __future__ import annotations

import functools
import re

from prefill.models import SUPPORTED_LOCALES, Locale

_NAMES: dict[str, Locale] = {
    # code, ISO 639-2 code, and the language's name in English, Finnish and Swedish
    **dict.fromkeys(("fi", "fin", "finnish", "suomi", "finska"), "fi"),
    **dict.fromkeys(("sv", "swe", "swedish", "svenska", "ruotsi"), "sv"),
    **dict.fromkeys(("en", "eng", "english", "englanti", "engelska"), "en"),
}
_REGION = re.compile(r"[-_(,]")
"""What follows the language: a region code (fi-FI, sv_FI) or one in words ("English (UK)",
HubSpot's "English - United Kingdom")."""

LANGUAGES_SAID = f"{', '.join(SUPPORTED_LOCALES)} or a name such as Finnish, svenska, englanti"


@functools.lru_cache(maxsize=1024)  # An export says its few languages over and over.
def locale_of(value: str) -> Locale | None:
    """The pages' locale for a code or a name; None for a language the pages are not in."""
    language = _REGION.split(value, maxsplit=1)[0].strip().lower()
    return _NAMES.get(language)
