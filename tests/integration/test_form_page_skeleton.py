"""The personal form page filled into its skeleton (web/form_page.py) is the page form.html
renders for the same view, byte for byte, whatever the values hold."""

from __future__ import annotations

import csv
import itertools
from typing import cast

import msgspec
import pytest
from jinja2 import Template

from prefill.app import template_engine
from prefill.catalog import CatalogCache
from prefill.consent import MASK, ConsentShown
from prefill.links import LinkBuilder
from prefill.models import Channel, Form, Locale
from prefill.services import FormView, PrefillService, Visitor
from prefill.store import Repository
from prefill.tokens import LinkSigner
from prefill.web.form_page import PageParts, PersonalPages, render
from prefill.web.generic_page import GenericPages
from tests.conftest import EXAMPLES
from tests.helpers import FEEDBACK_FORM_ID, FORM_ID, feedback_link, form_link, token_of

with (EXAMPLES / "customers.csv").open(encoding="utf-8") as rows:
    CUSTOMERS = [row["id"] for row in csv.DictReader(rows)]
HOSTILE = [
    '<script>alert("x")</script>',
    "O'Brien & Söner",
    "\x00v0\x00 \x00t\x00 \x00o0\x00",  # a value that looks like the skeleton's slots
    f"a{MASK}b",
    "vegan",
    "",
]


@pytest.fixture
def template() -> Template:
    template: Template = template_engine("Kaamos & Co").engine.get_template("form.html")
    return template


async def views(repository: Repository, links: LinkBuilder, signer: LinkSigner) -> list[FormView]:
    """Every example customer's admitted page on both example forms."""
    service = PrefillService(repository, signer, CatalogCache(repository))
    found = []
    for customer in CUSTOMERS:
        for form_id, link in ((FORM_ID, form_link), (FEEDBACK_FORM_ID, feedback_link)):
            token = token_of(await link(repository, links, customer))
            view = await service.form_view(form_id, token, Channel.PAGE, Visitor())
            if view.personal:
                found.append(view)
    assert len(found) >= 4
    return found


def parts_for(view: FormView, csrf: str = "c5rf'<&>") -> PageParts:
    card = f"/card?t={view.card_token}&x=<'\">" if view.card_token else None
    return PageParts(card_url=card, vcard_url=card and card + "&v", csrf_token=csrf)


async def test_every_example_page_fills_as_it_renders(
    template: Template,
    repository: Repository,
    links: LinkBuilder,
    signer: LinkSigner,
    examples: None,
) -> None:
    pages = PersonalPages()
    for view in await views(repository, links, signer):
        for _ in range(2):  # the skeleton rendered, then taken from the cache
            parts = parts_for(view)
            assert pages.page(template, view, parts) == render(template, view, parts)


async def test_hostile_values_chosen_options_and_consent_states_fill_as_they_render(
    template: Template,
    repository: Repository,
    links: LinkBuilder,
    signer: LinkSigner,
    examples: None,
) -> None:
    pages = PersonalPages()
    for view in await views(repository, links, signer):
        purposes = [notice.purpose for notice in view.form.consents]
        states = [None, ConsentShown(True, 1_700_000_000.0), ConsentShown(False, 1_800_000_000.0)]
        for value, granted in itertools.product(HOSTILE, states):
            changed = msgspec.structs.replace(
                view,
                values=dict.fromkeys(view.values, value),
                greeting_name=value,
                consents=dict.fromkeys(purposes, granted) if granted else {},
            )
            parts = parts_for(changed, csrf=value)
            assert pages.page(template, changed, parts) == render(template, changed, parts)


async def test_a_value_choosing_an_option_is_shown_chosen(
    template: Template,
    repository: Repository,
    links: LinkBuilder,
    signer: LinkSigner,
    examples: None,
) -> None:
    pages = PersonalPages()
    view = next(v for v in await views(repository, links, signer) if "diet" in v.values)
    for option in ("none", "vegetarian", "vegan"):
        changed = msgspec.structs.replace(view, values=view.values | {"diet": option})
        page = pages.page(template, changed, parts_for(changed))
        assert f'<option value="{option}" selected>' in page
        assert page.count(" selected>") == 1


@pytest.mark.parametrize("locale", ["fi", "sv", "en"])
def test_the_empty_page_is_the_one_form_html_renders(template: Template, locale: str) -> None:
    forms = msgspec.json.decode((EXAMPLES / "forms.json").read_bytes(), type=list[Form])
    pages = GenericPages()
    for form in forms:
        view = FormView(form=form, locale=cast(Locale, locale))
        for token in ("c5rf'<&>", "abc123"):
            expected = render(template, view, PageParts(None, None, token))
            assert pages.page(template, view, 200, token) == expected


async def test_the_empty_page_holds_nothing_of_a_personal_view_it_is_given(
    template: Template,
    repository: Repository,
    links: LinkBuilder,
    signer: LinkSigner,
    examples: None,
) -> None:
    pages = GenericPages()
    view = next(v for v in await views(repository, links, signer) if v.values)
    assert view.form_token is not None
    page = pages.page(template, view, 200, "abc123")
    assert page == render(
        template, FormView(form=view.form, locale=view.locale), PageParts(None, None, "abc123")
    )
    assert view.form_token not in page
    typed = [view.values[key] for key in ("email", "first_name") if key in view.values]
    assert typed
    for value in typed:
        assert value not in page
