"""Choosing the customer's language, and the interface texts from the gettext catalogs.

The texts live in `locale/<lang>/LC_MESSAGES/messages.po` (English msgids). The catalogs are
compiled in memory when first used, so a fresh checkout, an editable install and a wheel all
work with no compile step to remember. Data-driven texts (form titles, labels, consent notices)
come with their own translations in forms.json and are chosen with `pick`.
"""

from __future__ import annotations

import functools
import io
from datetime import UTC, date, datetime
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from prefill.models import DEFAULT_LOCALE, SUPPORTED_LOCALES, Locale, Translated

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def negotiate_locale(accept_language: str | None) -> Locale:
    """The best supported locale for an Accept-Language header (RFC 9110 quality values)."""
    supported: dict[str, Locale] = {locale: locale for locale in SUPPORTED_LOCALES}
    candidates: list[tuple[float, int, Locale]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        locale = supported.get(tag.strip().lower().split("-")[0])
        if locale is not None and quality > 0:
            # Earlier entries win ties: browsers list preferences in order.
            candidates.append((quality, -position, locale))
    return max(candidates)[2] if candidates else DEFAULT_LOCALE


def pick(texts: Translated, locale: Locale) -> str:
    """The text in `locale`, else English, else any text there is."""
    return texts.get(locale) or texts.get(DEFAULT_LOCALE) or next(iter(texts.values()), "")


DATE_LOCALES: dict[Locale, str] = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}
"""Whose way of writing a date each page language follows: a Finnish company's."""


def long_date(timestamp: float, locale: Locale) -> str:
    """A day as people write it in `locale` (3. maaliskuuta 2026, 3 mars 2026, 3 March 2026),
    of the UTC date: the time a record holds."""
    return _long_day(datetime.fromtimestamp(timestamp, UTC).date(), locale)


@functools.lru_cache(maxsize=4096)
def _long_day(day: date, locale: Locale) -> str:
    """Babel parses the locale and the pattern on every call, a fifteenth of a personal form
    page's CPU (py-spy): each day is written once per language. It keeps calendar days only,
    never whose day it was."""
    return format_date(day, format="long", locale=DATE_LOCALES[locale])


def catalog_path(locale: Locale) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(locale: Locale) -> Translations:
    """The compiled catalog for `locale`; a msgid without a translation stays English.
    Fuzzy entries are left out: a text changed in English is not shown with a stale meaning."""
    with catalog_path(locale).open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def N_(message: str) -> str:
    """Mark a text for the catalogs where it is defined; translate it later, where the locale
    is known (`translate(locale, MESSAGE)` in Python, `{{ _(message) }}` in a template)."""
    return message


def translate(locale: Locale, message: str, **values: object) -> str:
    """`message` (an English msgid) in `locale`, with its `%(name)s` placeholders filled."""
    text = translations(locale).gettext(message)
    return text % values if values else text


@pass_context
def _template_gettext(context: Context, message: str) -> str:
    return translations(context.get("locale", DEFAULT_LOCALE)).gettext(message)


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return translations(context.get("locale", DEFAULT_LOCALE)).ngettext(singular, plural, count)


def install_gettext(environment: Environment) -> None:
    """`_()`, `gettext()` and `{% trans %}` for `environment`, in each template's `locale`
    (every page has one in its context). Newstyle: placeholders are `%(name)s` and escaped.
    The extraction options in babel.cfg must match these (trimmed, newstyle)."""
    environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        _template_gettext, _template_ngettext, newstyle=True
    )
    for locale in SUPPORTED_LOCALES:
        translations(locale)  # Compile now, not on the first customer's request.
