"""Submitting the hosted form, and the thank-you page it leads to.

The POST is CSRF-protected (Litestar's CSRF middleware: a cookie and a hidden field), must be a
same-origin form post, and is answered only after the submission is durable. Invalid input
re-renders the form with a message next to each field and everything typed kept.
"""

from __future__ import annotations

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_422_UNPROCESSABLE_ENTITY

from prefill.consent import truncate_ip
from prefill.i18n import negotiate_locale
from prefill.models import SUPPORTED_LOCALES, Locale
from prefill.web.deps import LinksDep, ServiceDep, VisitorDep
from prefill.web.pages import require_form_post, require_same_origin

MAX_FIELDS = 100
"""More posted fields than any form has is not a person filling in a form."""


def _locale(request: Request[object, object, State], chosen: str | None) -> Locale:
    for locale in SUPPORTED_LOCALES:
        if chosen == locale:
            return locale
    return negotiate_locale(request.headers.get("accept-language"))


@post(
    "/f/{form_id:str}/submit",
    name="submit_form",
    status_code=HTTP_303_SEE_OTHER,
    include_in_schema=False,  # A page for people, like the form itself.
)
async def submit_form(
    form_id: FromPath[str],
    request: Request[object, object, State],
    service: ServiceDep,
    links: LinksDep,
    visitor: VisitorDep,
) -> Redirect | Template:
    require_form_post(request)
    require_same_origin(request, links)
    form_data = await request.form()
    posted = {key: str(value) for key, value in list(form_data.items())[:MAX_FIELDS]}
    locale = _locale(request, posted.get("lang"))
    client = request.client.host if request.client else ""
    outcome = await service.submit(
        form_id, posted, locale, truncate_ip(client), request.headers.get("user-agent", "")
    )
    if outcome.rejected is None:
        return Redirect(f"/f/{form_id}/thanks?lang={locale}", status_code=HTTP_303_SEE_OTHER)
    token = posted.get("t", "")
    view = await service.rejected_view(outcome, token or None, visitor)
    card_token = view.card_token
    return Template(
        template_name="form.html",
        context={
            "view": view,
            "locale": locale,
            "errors": outcome.rejected.errors,
            "submit_token": token,
            "checked": {k.removeprefix("consent_") for k in posted if k.startswith("consent_")},
            "card_url": links.card_path(card_token) if card_token else None,
            "vcard_url": links.vcard_path(card_token) if card_token else None,
        },
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
    )


@get("/f/{form_id:str}/thanks", name="thanks", include_in_schema=False)
async def thanks(
    form_id: FromPath[str],
    request: Request[object, object, State],
    service: ServiceDep,
    lang: FromQuery[str | None] = None,
) -> Template:
    form = await service.require_form(form_id)
    return Template(
        template_name="thanks.html", context={"form": form, "locale": _locale(request, lang)}
    )
