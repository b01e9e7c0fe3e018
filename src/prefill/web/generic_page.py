"""The empty form page that every refused or token-less link gets, rendered once per form,
language and status instead of once per request.

It is the same page for every visitor (that is the point of a refusal: no oracle), except for
the CSRF token in its hidden field, which is put into the stored page per request. It holds
nothing about any customer: only the form as the catalog defines it. A changed form is a new
catalog object, which renders anew.
"""

from __future__ import annotations

import html

from litestar import Request, Response
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.utils.scope.state import ScopeState

from prefill.models import Form, Locale
from prefill.services import FormView

CSRF_SLOT = "\x00csrf\x00"
"""Stands for the token while the page is rendered: no rendered text can contain a NUL."""


class GenericPages:
    """One app's rendered empty form pages, by form id, language and status."""

    def __init__(self) -> None:
        self._pages: dict[tuple[str, Locale, int], tuple[Form, str]] = {}

    def response(
        self, request: Request[object, object, State], view: FormView, status_code: int
    ) -> Response[str]:
        key = (view.form.id, view.locale, status_code)
        stored = self._pages.get(key)
        if stored is None or stored[0] is not view.form:
            stored = self._pages[key] = (view.form, self._render(request, view))
        token = ScopeState.from_scope(request.scope).csrf_token
        page = stored[1].replace(CSRF_SLOT, html.escape(token if isinstance(token, str) else ""))
        return Response(page, status_code=status_code, media_type=MediaType.HTML)

    @staticmethod
    def _render(request: Request[object, object, State], view: FormView) -> str:
        """What Litestar's Template response renders for the empty form (see _form_page)."""
        engine = request.app.template_engine
        assert engine is not None
        page: str = engine.get_template("form.html").render(
            view=view,
            locale=view.locale,
            card_url=None,
            vcard_url=None,
            errors={},
            submit_token="",
            checked=set(),
            request=request,
            csrf_input=f'<input type="hidden" name="_csrf_token" value="{CSRF_SLOT}" />',
        )
        return page
