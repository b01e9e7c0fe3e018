"""The personal form page filled into a skeleton rendered once per shape, instead of rendering
form.html per request (Jinja was half of a form page's CPU, profiled).

A skeleton is form.html rendered with markers in place of everything that is the customer's or
the link's: the shown values, the greeting name, the consents' dates, the tokens and the card
links. Its shape, the cache key, is what decides the page's structure and nothing more: the
form, the language, the contact person, the home country (how the contact's phone is shown),
which fields hold a value and whether it is masked, each consent's state, whether there is a
greeting and a card link. The key holds no value and no token, and the skeleton none either:
they are filled in per request, escaped as Jinja's autoescape escapes them (markupsafe).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from jinja2 import Template
from markupsafe import escape

from prefill.consent import MASK, ConsentShown
from prefill.i18n import long_date
from prefill.models import ContactPerson, Form
from prefill.services import FormView

MARKER = re.compile("\x00([^\x00]*)\x00")
"""A slot in a skeleton; no rendered text can contain a NUL otherwise."""
MAX_SKELETONS = 4096
"""Shapes are few (forms x languages x contacts x a few flags); this only bounds a surprise."""


def chosen(value: str, option: str, attribute: str) -> str:
    """`attribute` (" selected", " checked") on the option a field's value chose; a template
    global, so that a skeleton can make it a slot."""
    return attribute if value == option else ""


class _Skeleton(NamedTuple):
    form: Form
    contact: ContactPerson | None
    parts: list[str]
    """Text and slot names, alternating: text first and last."""
    options: dict[str, tuple[str, str, str]]
    """An option's slot: the field's value slot, the option's value, the attribute."""


class PageParts(NamedTuple):
    """What a personal form page shows beyond `view`: the links and the CSRF token."""

    card_url: str | None
    vcard_url: str | None
    csrf_token: str


class PersonalPages:
    """One app's form page skeletons, by shape."""

    def __init__(self) -> None:
        self._skeletons: dict[tuple[object, ...], _Skeleton] = {}

    def page(self, template: Template, view: FormView, parts: PageParts) -> str:
        key = _shape(view, parts)
        skeleton = self._skeletons.get(key)
        if (
            skeleton is None
            or skeleton.form is not view.form
            or skeleton.contact is not view.contact
        ):
            if len(self._skeletons) >= MAX_SKELETONS:
                self._skeletons.clear()
            skeleton = self._skeletons[key] = _render_skeleton(template, view, parts)
        return _fill(skeleton, view, parts)


def render(template: Template, view: FormView, parts: PageParts) -> str:
    """The page rendered directly, as the skeleton and its filling stand for."""
    return template.render(context(view, parts))


def context(view: FormView, parts: PageParts, **overrides: Any) -> dict[str, Any]:
    token = view.form_token or ""
    return {
        "view": view,
        "locale": view.locale,
        "card_url": parts.card_url,
        "vcard_url": parts.vcard_url,
        "errors": {},
        "submit_token": token,
        "checked": set(),
        "csrf_input": csrf_input(parts.csrf_token),
        **overrides,
    }


def csrf_input(token: str) -> str:
    """The hidden field Litestar's Template response gives a template as `csrf_input`."""
    return f'<input type="hidden" name="_csrf_token" value="{html.escape(token)}" />'


def _shape(view: FormView, parts: PageParts) -> tuple[object, ...]:
    return (
        view.form.id,
        view.locale,
        view.contact.id if view.contact else None,
        view.home_country,
        tuple((name, MASK in value) for name, value in view.values.items()),
        tuple((purpose, state.granted) for purpose, state in view.consents.items()),
        bool(view.greeting_name),
        view.form_token is not None,
        parts.card_url is not None,
        parts.vcard_url is not None,
    )


def _slot(name: str) -> str:
    return f"\x00{name}\x00"


def _value_slot(index: int, value: str) -> str:
    # The mask stays in the marker: the template shows a masked value differently.
    return _slot(f"v{index}{MASK if MASK in value else ''}")


def _render_skeleton(template: Template, view: FormView, parts: PageParts) -> _Skeleton:
    values = {name: _value_slot(i, value) for i, (name, value) in enumerate(view.values.items())}
    options: dict[str, tuple[str, str, str]] = {}

    def chosen_slot(value: str, option: str, attribute: str) -> str:
        if not value:
            return chosen(value, option, attribute)  # No value: the same for every customer.
        slot = f"o{len(options)}"
        options[slot] = (value.strip("\x00"), option, attribute)
        return _slot(slot)

    def date_slot(at: float, locale: str) -> str:
        return _slot(f"d{int(at)}")

    marked = msgspec.structs.replace(
        view,
        values=values,
        greeting_name=_slot("g") if view.greeting_name else "",
        form_token=_slot("t") if view.form_token is not None else None,
        consents={
            purpose: ConsentShown(granted=state.granted, at=float(i))
            for i, (purpose, state) in enumerate(view.consents.items())
        },
    )
    marked_parts = PageParts(
        card_url=_slot("c") if parts.card_url is not None else None,
        vcard_url=_slot("k") if parts.vcard_url is not None else None,
        csrf_token=_slot("s"),
    )
    page = template.render(context(marked, marked_parts, chosen=chosen_slot, long_date=date_slot))
    return _Skeleton(view.form, view.contact, MARKER.split(page), options)


def _fill(skeleton: _Skeleton, view: FormView, parts: PageParts) -> str:
    slots: dict[str, str] = {
        "g": escape(view.greeting_name),
        "t": escape(view.form_token or ""),
        "c": escape(parts.card_url or ""),
        "k": escape(parts.vcard_url or ""),
        "s": html.escape(parts.csrf_token),  # As Litestar's csrf_input escapes it.
    }
    for i, value in enumerate(view.values.values()):
        slots[_value_slot(i, value).strip("\x00")] = escape(value)
    for i, state in enumerate(view.consents.values()):
        slots[f"d{i}"] = escape(long_date(state.at, view.locale))
    _choose(skeleton.options, slots, view.values)
    pieces = list(skeleton.parts)
    for i in range(1, len(pieces), 2):
        pieces[i] = slots[pieces[i]]
    return "".join(pieces)


def _choose(
    options: Mapping[str, tuple[str, str, str]], slots: dict[str, str], values: Mapping[str, str]
) -> None:
    """The chosen option's attribute; `slots` holds the escaped values by their value slot, and
    an option's value is compared with the value itself."""
    by_slot = {
        _value_slot(i, value).strip("\x00"): value for i, value in enumerate(values.values())
    }
    for slot, (value_slot, option, attribute) in options.items():
        slots[slot] = chosen(by_slot[value_slot], option, attribute)
