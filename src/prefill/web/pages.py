"""HTML pages for people: the hosted form, "Not you?", the contact card, its vCard and photo."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlencode

import msgspec
from litestar import Litestar, Request, Response, Router, get, head, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_204_NO_CONTENT,
    HTTP_303_SEE_OTHER,
    HTTP_403_FORBIDDEN,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import Receive, Scope, Send
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState

from prefill.links import LinkBuilder
from prefill.models import Channel
from prefill.services import CardView, ConsentNotAsked, UnknownForm
from prefill.store import StoreUnavailable
from prefill.tokens import TokenPurpose
from prefill.web.csrf import FormCSRF
from prefill.web.deps import PublicDep, ServiceDep, evidence_ip, public_of
from prefill.web.errors import RETRY_AFTER_SECONDS, log_unavailable, message_page
from prefill.web.fast import FAST_ROUTE, Answer, query_value
from prefill.web.form_page import PageParts, PersonalPages
from prefill.web.generic_page import GenericPages

PHOTO_CACHE_SECONDS = 3600


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded",)


def require_form_post(request: Request[object, object, State]) -> None:
    """Browsers post forms URL-encoded; anything else is a client mistake, said as 415."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in FORM_MEDIA_TYPES:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"Expected a form post ({FORM_MEDIA_TYPES[0]}), got {media_type or 'none'}.",
        )


def require_same_origin(request: Request[object, object, State], links: LinkBuilder) -> None:
    """Only our own pages may post here. Browsers say where a POST comes from in Sec-Fetch-Site,
    and in Origin, which is "null" on our pages (their Referrer-Policy is no-referrer): a
    "null" says nothing either way. Our own origin is the public URL's (behind a TLS proxy the
    request itself may say http://)."""
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = {links.origin, f"{request.url.scheme}://{request.url.netloc}", "null"}
    if fetch_site not in (None, "same-origin", "none") or (
        origin is not None and origin not in own
    ):
        raise HTTPException(
            status_code=HTTP_403_FORBIDDEN, detail="Cross-site form posts are not accepted."
        )


class TokenForm(msgspec.Struct):
    """A POST that carries the link token in its body, never in a URL."""

    t: str = ""


_HTML = (b"content-type", b"text/html; charset=utf-8")
_RETRY_AFTER = (b"retry-after", RETRY_AFTER_SECONDS.encode())


async def form_page_answer(scope: Scope, form_id: str, t: str | None) -> Answer:
    """The hosted form: prefilled for an admitted link, the same empty form for any other."""
    app: Litestar = scope["litestar_app"]
    service, links, visitor = public_of(scope)
    generic_pages: GenericPages = app.state["generic_pages"]  # (by key: see deps.public_of)
    assert app.template_engine is not None
    template = app.template_engine.get_template("form.html")
    # Put in scope by the route's CSRF layer (web/csrf.py), as Litestar's Template reads it.
    csrf_token = value_or_default(ScopeState.from_scope(scope).csrf_token, "")
    try:
        view = await service.form_view(form_id, t, Channel.PAGE, visitor)
    except StoreUnavailable as exc:
        # Fail closed, but still give the person a form they can use.
        try:
            generic = service.generic_form_view(form_id, visitor)
        except UnknownForm:
            raise exc from exc.__cause__  # No cached form: the plain 503, logged there.
        log_unavailable(exc)
        page = generic_pages.encoded(template, generic, HTTP_503_SERVICE_UNAVAILABLE, csrf_token)
        return Answer(page, [_RETRY_AFTER, _HTML], HTTP_503_SERVICE_UNAVAILABLE)
    if view.personal:
        card_token = view.card_token
        parts = PageParts(
            card_url=links.card_path(card_token) if card_token else None,
            vcard_url=links.vcard_path(card_token) if card_token else None,
            csrf_token=csrf_token,
        )
        personal_pages: PersonalPages = app.state["personal_pages"]
        return Answer(personal_pages.page(template, view, parts).encode(), [_HTML])
    return Answer(generic_pages.encoded(template, view, HTTP_200_OK, csrf_token), [_HTML])


async def form_page_fast(scope: Scope, receive: Receive, send: Send) -> None:
    form_id = scope["path_params"]["form_id"]
    answer = await form_page_answer(scope, form_id, query_value(scope, "t"))
    await answer(scope, receive, send)


@get(
    "/f/{form_id:str}",
    name="form_page",
    middleware=[FormCSRF],
    opt={FAST_ROUTE: form_page_fast},
)
async def form_page(
    form_id: FromPath[str],
    request: Request[object, object, State],
    t: FromQuery[str | None] = None,
) -> Answer:
    return await form_page_answer(request.scope, form_id, t)


@post("/f/{form_id:str}/not-you", name="not_you", status_code=HTTP_303_SEE_OTHER)
async def not_you(
    form_id: FromPath[str],
    data: URLEncodedBody[TokenForm],
    request: Request[object, object, State],
    public: PublicDep,
) -> Redirect:
    """Kill the customer's links and show the empty form. The token in the body is the proof
    of possession; a cross-site attacker does not have it, so no CSRF cookie is needed."""
    service, links, visitor = public
    require_form_post(request)
    require_same_origin(request, links)
    await service.not_you(form_id, data.t or None, visitor)
    return Redirect(f"/f/{form_id}", status_code=HTTP_303_SEE_OTHER)


class WithdrawForm(msgspec.Struct):
    """The customer's own page withdrawing one of the form's consents (CSRF field aside)."""

    t: str = ""
    purpose: str = ""


@post(
    "/f/{form_id:str}/withdraw",
    name="withdraw_consent",
    status_code=HTTP_303_SEE_OTHER,
    middleware=[FormCSRF],
)
async def withdraw_consent(
    form_id: FromPath[str],
    data: URLEncodedBody[WithdrawForm],
    request: Request[object, object, State],
    public: PublicDep,
) -> Redirect:
    """Withdraw a consent shown in force on the page, then show the page again with what is
    in force now. A link that is not admitted gets the empty form, like any refused link."""
    service, links, visitor = public
    require_form_post(request)
    require_same_origin(request, links)
    user_agent = request.headers.get("user-agent", "")
    try:
        done = await service.withdraw_consent(
            form_id, data.t or None, data.purpose, evidence_ip(request), user_agent, visitor
        )
    except ConsentNotAsked:
        raise ClientException(detail="This form asks for no such consent.") from None
    page = f"/f/{form_id}?{urlencode({'t': data.t})}" if done else f"/f/{form_id}"
    return Redirect(page, status_code=HTTP_303_SEE_OTHER)


def _card_page(view: CardView, links: LinkBuilder, organization: str) -> Template:
    return Template(
        template_name="card.html",
        context={
            "view": view,
            "locale": view.locale,
            "vcard_url": links.vcard_path(view.card_token) if view.card_token else None,
            "organization": organization,
        },
    )


@get("/card", name="card_page")
async def card_page(public: PublicDep, t: FromQuery[str | None] = None) -> Template:
    service, links, visitor = public
    view = await service.card_view(t, Channel.CARD, visitor)
    return _card_page(view, links, service.organization)


@get("/card/vcard", name="card_vcard")
async def card_vcard(public: PublicDep, t: FromQuery[str | None] = None) -> Response[str]:
    """The contact person as a vCard download; the same 404 for every link that is refused."""
    service, _, visitor = public
    card = await service.vcard(t, visitor)
    if card is None:
        return Response(
            "No contact card for this link.\n",
            status_code=404,
            media_type="text/plain",
        )
    return Response(
        card.text,
        media_type="text/vcard",
        headers={"Content-Disposition": f'attachment; filename="{card.filename}"'},
    )


@get("/contacts/{contact_id:str}/photo", name="contact_photo")
async def contact_photo(contact_id: FromPath[str], service: ServiceDep) -> Response[bytes]:
    photo = await service.contact_photo(contact_id)
    if photo is None:
        raise NotFoundException("No photo for this contact person.")
    # Staff photos are not customer data and carry no token: browsers may cache them.
    return Response(
        photo,
        media_type="image/jpeg",
        headers={"Cache-Control": f"public, max-age={PHOTO_CACHE_SECONDS}"},
    )


@head(["/f/{form_id:str}", "/card", "/card/vcard"], name="link_head", media_type="text/html")
async def link_head(
    request: Request[object, object, State], service: ServiceDep, t: FromQuery[str | None] = None
) -> None:
    """Link scanners and previewers often send HEAD: 200 with no body for any such path.
    Nothing is read, disclosed or audited; a validly signed link's campaign counts a scanner
    hit."""
    purpose = TokenPurpose.FORM if request.url.path.startswith("/f/") else TokenPurpose.CARD
    await service.count_head(purpose, t)


class SeenForm(msgspec.Struct):
    """What a page's reporting script (static/seen.js) posts: the page's own link token."""

    t: str = ""
    purpose: Literal["form", "card"] = "form"


@post("/seen", name="page_seen", status_code=HTTP_204_NO_CONTENT)
async def page_seen(
    data: URLEncodedBody[SeenForm],
    request: Request[object, object, State],
    public: PublicDep,
) -> None:
    """A person has a form or card page open: an open in the campaign's funnel. The same empty
    answer for any token, so it tells nothing about one."""
    service, links, visitor = public
    require_form_post(request)
    require_same_origin(request, links)
    await service.page_seen(TokenPurpose(data.purpose), data.t or None, visitor)


@get("/", name="home")
async def home(request: Request[object, object, State]) -> Template:
    return message_page(request, 200, "home")


pages_router = Router(
    path="/",
    include_in_schema=False,  # Pages for people; the OpenAPI document describes the JSON APIs.
    route_handlers=[
        home,
        form_page,
        link_head,
        not_you,
        withdraw_consent,
        page_seen,
        card_page,
        card_vcard,
        contact_photo,
    ],
)
