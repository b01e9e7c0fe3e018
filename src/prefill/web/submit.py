"""Submitting the hosted form, and the thank-you page it leads to.

The POST is CSRF-protected (Litestar's CSRF middleware: a cookie and a hidden field), must be a
same-origin form post, and is answered only after the submission is durable. Invalid input
re-renders the form with a message next to each field and everything typed kept.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_422_UNPROCESSABLE_ENTITY

from prefill.events import event_name, when_text, where_text
from prefill.i18n import negotiate_locale
from prefill.links import LinkBuilder
from prefill.models import SUPPORTED_LOCALES, Locale
from prefill.tokens import SHORT_LIVED_SECONDS, TokenPurpose
from prefill.web.csrf import FormCSRF
from prefill.web.deps import PublicDep, evidence_ip
from prefill.web.pages import require_form_post, require_same_origin

MAX_FIELDS = 100
"""More posted fields than any form has is not a person filling in a form."""
THANKS_COOKIE = "prefill_thanks"
"""Who just submitted, for the thank-you page and its calendar file: a short-lived signed
value in a cookie, so that the page's address carries neither a token nor anything personal."""


def _thanks_cookie(form_id: str, token: str | None, links: LinkBuilder) -> Cookie:
    """The cookie after a submit; an anonymous submit clears one left by an earlier submit."""
    return Cookie(
        key=THANKS_COOKIE,
        value=token or "",
        path=f"/f/{form_id}/",
        max_age=SHORT_LIVED_SECONDS[TokenPurpose.THANKS] if token else 0,
        httponly=True,
        samesite="strict",
        secure=links.origin.startswith("https://"),
    )


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
    middleware=[FormCSRF],
)
async def submit_form(
    form_id: FromPath[str],
    request: Request[object, object, State],
    public: PublicDep,
) -> Redirect | Template:
    service, links, visitor = public
    require_form_post(request)
    require_same_origin(request, links)
    form_data = await request.form()
    posted = {key: str(value) for key, value in list(form_data.items())[:MAX_FIELDS]}
    locale = _locale(request, posted.get("lang"))
    outcome = await service.submit(
        form_id, posted, locale, evidence_ip(request), request.headers.get("user-agent", "")
    )
    if outcome.rejected is None:
        return Redirect(
            f"/f/{form_id}/thanks?lang={locale}",
            status_code=HTTP_303_SEE_OTHER,
            cookies=[_thanks_cookie(form_id, outcome.thanks_token, links)],
        )
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
    public: PublicDep,
    lang: FromQuery[str | None] = None,
) -> Template:
    """The thank-you page: the contact person again for the person who just submitted, and
    the form's event with a calendar file."""
    service, links, _ = public
    view = await service.thanks_view(
        form_id, request.cookies.get(THANKS_COOKIE), _locale(request, lang)
    )
    event = view.form.event
    return Template(
        template_name="thanks.html",
        context={
            "view": view,
            "form": view.form,
            "locale": view.locale,
            "card_url": links.card_path(view.card_token) if view.card_token else None,
            "vcard_url": links.vcard_path(view.card_token) if view.card_token else None,
            "event": event,
            "event_name": event_name(view.form, event, view.locale) if event else "",
            "when": when_text(event, view.locale) if event else "",
            "where": where_text(event) if event else "",
            "calendar_url": f"/f/{form_id}/event.ics?lang={view.locale}" if event else None,
        },
    )


@get("/f/{form_id:str}/event.ics", name="event_calendar", include_in_schema=False)
async def event_calendar(
    form_id: FromPath[str],
    request: Request[object, object, State],
    public: PublicDep,
    lang: FromQuery[str | None] = None,
) -> Response[bytes]:
    """The form's event as an iCalendar file to add to a calendar (RFC 5545)."""
    service, links, _ = public
    calendar = await service.event_file(
        form_id,
        request.cookies.get(THANKS_COOKIE),
        _locale(request, lang),
        uid_domain=urlsplit(links.origin).hostname or "prefill",
    )
    if calendar is None:
        raise NotFoundException("This form has no event.")
    return Response(
        calendar.text,
        media_type="text/calendar",  # Litestar adds "; charset=utf-8" to a text type.
        headers={"Content-Disposition": f'attachment; filename="{calendar.filename}"'},
    )
