"""The JSON API the embeddable widget calls: no cookies, CORS only for the form's origins.

Litestar's CORSConfig takes one origin list for the whole app; here each form names its own
origins, which can change at run time, so the header is set per response from the form.
"""

from __future__ import annotations

import msgspec
from litestar import MediaType, Request, Router, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response.base import ASGIResponse

from prefill.i18n import pick
from prefill.links import LinkBuilder
from prefill.models import Channel, ContactPerson, Locale
from prefill.web.deps import PublicDep
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


@get(
    "/forms/{form_id:str}/prefill",
    name="api_prefill",
    responses={200: ResponseSpec(PrefillOut, description="Request fulfilled, document follows")}
    | PUBLIC_API_ERRORS,
)
async def prefill(
    form_id: FromPath[str],
    request: Request[object, object, State],
    public: PublicDep,
    t: FromQuery[str | None] = None,
) -> ASGIResponse:
    """The values to fill into the form's fields for the link token `t`, and the contact.
    Encoded here and answered as an ASGIResponse: Litestar's Response would wrap, inspect and
    encode it again on every request (the widget's is the busiest route)."""
    service, links, visitor = public
    origin = request.headers.get("origin")
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
    headers = {"Vary": "Origin"}
    if origin is not None and origin in view.form.allowed_origins:
        headers["Access-Control-Allow-Origin"] = origin
    return ASGIResponse(body=msgspec.json.encode(body), media_type=MediaType.JSON, headers=headers)


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
