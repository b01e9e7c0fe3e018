"""The empty form page that every refused or token-less link gets, rendered once per form,
language and status instead of once per request.

It is the same page for every visitor (that is the point of a refusal: no oracle), except for
the CSRF token in its hidden field, which is put into the stored page per request. It holds
nothing about any customer: only the form as the catalog defines it. A changed form is a new
catalog object, which renders anew.
"""

from __future__ import annotations

import html

from jinja2 import Template

from prefill.models import Form, Locale
from prefill.services import FormView
from prefill.web.form_page import PageParts, context

CSRF_SLOT = "\x00csrf\x00"
"""Stands for the token while the page is rendered: no rendered text can contain a NUL."""
_ENCODED_SLOT = CSRF_SLOT.encode()


class GenericPages:
    """One app's rendered empty form pages, by form id, language and status."""

    def __init__(self) -> None:
        self._pages: dict[tuple[str, Locale, int], tuple[Form, bytes]] = {}

    def page(self, template: Template, view: FormView, status_code: int, csrf_token: str) -> str:
        """The empty form page of `template` (form.html) for `view`, with `csrf_token`."""
        return self.encoded(template, view, status_code, csrf_token).decode()

    def encoded(
        self, template: Template, view: FormView, status_code: int, csrf_token: str
    ) -> bytes:
        """`page` in UTF-8, as it is answered. Kept encoded: a request pays for putting its
        token in, not for encoding the whole page again (a refused link's page spent about 7%
        of its instructions in `str.encode` and the slot's replace in a wide string)."""
        key = (view.form.id, view.locale, status_code)
        stored = self._pages.get(key)
        if stored is None or stored[0] is not view.form:
            # Only the form and the language: a personal view passed here by mistake must not
            # put its values, greeting or token into the page every visitor gets.
            empty = FormView(form=view.form, locale=view.locale)
            stored = self._pages[key] = (view.form, self._render(template, empty).encode())
        return stored[1].replace(_ENCODED_SLOT, html.escape(csrf_token).encode())

    @staticmethod
    def _render(template: Template, view: FormView) -> str:
        """The page form.html renders for the empty form, the token's place marked."""
        return template.render(context(view, PageParts(None, None, CSRF_SLOT)))
