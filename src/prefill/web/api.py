"""The JSON API the embeddable widget calls: no cookies, CORS only for the form's origins.

Litestar's CORSConfig takes one origin list for the whole app; here each form names its own
origins, which can change at run time, so the header is set per response from the form.
"""

from __future__ import annotations

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.types import Receive, Scope, Send

from prefill.i18n import pick
from prefill.links import LinkBuilder
from prefill.models import Channel, ContactPerson, Locale
from prefill.web.deps import PublicDep, public_headers, public_of
from prefill.web.fast import FAST_ROUTE, Answer, query_value
from prefill.web.openapi import PUBLIC_API_ERRORS


class ContactOut(msgspec.Struct, frozen=True):
    name: str
    title: str
    email: str
    phone: str
    photo_url: str | None
    card_url: str
    vcard_url: str


class PrefillOut(msgspec.Struct, frozen=True):
    """Identical in status and shape whether or not anything is disclosed."""

    form_id: str
    locale: Locale
    prefilled: bool
    values: dict[str, str]
    contact: ContactOut | None


class CardOut(msgspec.Struct, frozen=True):
    locale: Locale
    contact: ContactOut | None


def _contact_out(
    person: ContactPerson, locale: Locale, card_token: str, links: LinkBuilder
) -> ContactOut:
    return ContactOut(
        name=person.name,
        title=pick(person.title, locale),
        email=person.email,
        phone=person.phone,
        photo_url=links.photo_url(person.id) if person.has_photo else None,
        card_url=links.card_path(card_token, absolute=True),
        vcard_url=links.vcard_path(card_token, absolute=True),
    )


async def widget_answer(scope: Scope, form_id: str, t: str | None) -> Answer:
    """The widget's answer: the values to fill into the form's fields for the link token `t`,
    and the contact. Encoded here, headers included: the widget's is the busiest route."""
    headers = public_headers(scope)
    service, links, visitor = public_of(scope, headers)
    origin = headers.origin
    view = await service.widget_view(form_id, t, origin, visitor)
    contact = (
        _contact_out(view.contact, view.locale, view.card_token, links)
        if view.contact is not None and view.card_token is not None
        else None
    )
    body = PrefillOut(
        form_id=form_id,
        locale=view.locale,
        prefilled=view.personal,
        values=view.values,
        contact=contact,
    )
    raw_headers = [_VARY_ORIGIN, _JSON]
    if origin is not None and origin in view.form.allowed_origins:
        raw_headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
    return Answer(msgspec.json.encode(body), raw_headers)


_VARY_ORIGIN = (b"vary", b"Origin")
_JSON = (b"content-type", b"application/json")


async def widget_fast(scope: Scope, receive: Receive, send: Send) -> None:
    answer = await widget_answer(scope, scope["path_params"]["form_id"], query_value(scope, "t"))
    await answer(scope, receive, send)


@get(
    "/forms/{form_id:str}/prefill",
    name="api_prefill",
    responses={200: ResponseSpec(PrefillOut, description="Request fulfilled, document follows")}
    | PUBLIC_API_ERRORS,
    opt={FAST_ROUTE: widget_fast},
)
async def prefill(
    form_id: FromPath[str], request: Request[object, object, State], t: FromQuery[str | None] = None
) -> Answer:
    """The values to fill into the form's fields for the link token `t`, and the contact."""
    return await widget_answer(request.scope, form_id, t)


@get("/card", name="api_card", responses=PUBLIC_API_ERRORS)
async def card(public: PublicDep, t: FromQuery[str | None] = None) -> CardOut:
    """The contact person for a card link token `t`, as JSON."""
    service, links, visitor = public
    view = await service.card_view(t, Channel.CARD, visitor)
    contact = (
        _contact_out(view.contact, view.locale, view.card_token, links)
        if view.contact is not None and view.card_token is not None
        else None
    )
    return CardOut(locale=view.locale, contact=contact)


api_router = Router(path="/api/v1", route_handlers=[prefill, card])
