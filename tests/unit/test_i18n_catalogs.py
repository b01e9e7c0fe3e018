"""The gettext catalogs: complete for every text in the code, translated, placeholders intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment

from prefill.i18n import N_, catalog_path, install_gettext, translate
from prefill.models import SUPPORTED_LOCALES, Locale

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED: tuple[Locale, ...] = ("fi", "sv")
"""English is the msgid itself; these must each have every text."""
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def source_msgids() -> set[str]:
    """What `pybabel extract -F babel.cfg` finds in the code and templates now."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)  # type: ignore[no-untyped-call]
    return {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map)
    }


def load(locale: Locale) -> Catalog:
    with catalog_path(locale).open("rb") as source:
        return read_po(source, locale=locale)


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalog_has_exactly_the_texts_in_the_code(locale: Locale) -> None:
    """A text added to a template or marked with N_ is in every catalog; none is left over.
    Fix by running the pybabel extract and update commands in the README."""
    in_catalog = {str(message.id) for message in load(locale) if message.id}
    in_code = source_msgids()
    assert in_code - in_catalog == set(), "missing from the catalog"
    assert in_catalog - in_code == set(), "no longer in the code"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_text_is_translated_with_the_same_placeholders(locale: Locale) -> None:
    for message in load(locale):
        if not message.id:
            continue
        assert isinstance(message.string, str)
        assert message.string.strip(), f"{locale}: no translation for {message.id!r}"
        assert not message.fuzzy, f"{locale}: fuzzy (needs review): {message.id!r}"
        assert placeholders(message.string) == placeholders(str(message.id)), message.id


def test_english_overrides_keep_placeholders() -> None:
    for message in load("en"):
        if message.id and message.string:
            assert placeholders(str(message.string)) == placeholders(str(message.id))


def test_translate_fills_placeholders_and_falls_back_to_english() -> None:
    assert translate("fi", "Not %(name)s?", name="Matti") == "Etkö ole Matti?"
    assert translate("sv", "Register") == "Anmäl dig"
    assert translate("en", "Register") == "Register"
    assert translate("fi", N_("A text no catalog has")) == "A text no catalog has"


def test_templates_translate_per_render_and_escape_values() -> None:
    environment = Environment(autoescape=True)
    install_gettext(environment)
    template = environment.from_string(
        '{{ _("Register") }} {% trans name=who %}Not {{ name }}?{% endtrans %}'
    )
    assert template.render(locale="sv", who="Björn") == "Anmäl dig Är du inte Björn?"
    assert template.render(locale="fi", who="<b>") == "Ilmoittaudu Etkö ole &lt;b&gt;?"
    assert template.render(locale="en", who="Kadri") == "Register Not Kadri?"
