"""One-click unsubscribe (RFC 8058): the link of the unsubscribe purpose, from an email's
List-Unsubscribe header or its footer.

GET shows a confirmation page and changes nothing (mail scanners fetch every link). POST, from a
mail client's one-click button (body `List-Unsubscribe=One-Click`) or from the page's own button,
records the withdrawal. No cookie and no CSRF token: the signed link is the authority, and mail
providers post it from their own servers.
"""

from __future__ import annotations

from litestar import Request, get, head, post
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.params import FromQuery
from litestar.response import Template
from litestar.status_codes import HTTP_200_OK, HTTP_400_BAD_REQUEST

from prefill.i18n import negotiate_locale
from prefill.models import Locale
from prefill.web.deps import ServiceDep, evidence_ip

ONE_CLICK = ("List-Unsubscribe", "One-Click")


def _page(
    request: Request[object, object, State],
    state: str,
    token: str | None,
    locale: Locale | None = None,
) -> Template:
    """The page in the customer's own language when the link names them, else the browser's."""
    return Template(
        template_name="unsubscribe.html",
        context={
            "locale": locale or negotiate_locale(request.headers.get("accept-language")),
            "state": state,
            "token": token,
        },
        status_code=HTTP_400_BAD_REQUEST if state == "invalid" else HTTP_200_OK,
    )


@get("/u", name="unsubscribe_page", include_in_schema=False)
async def unsubscribe_page(
    request: Request[object, object, State], service: ServiceDep, t: FromQuery[str | None] = None
) -> Template:
    """The confirmation page: nothing is recorded until the person (or their mail client)
    posts."""
    state = "confirm" if service.unsubscribe_link_valid(t) else "invalid"
    return _page(request, state, t, await service.unsubscribe_locale(t))


@head("/u", name="unsubscribe_head", include_in_schema=False, media_type="text/html")
async def unsubscribe_head() -> None:
    """Mail scanners send HEAD too: 200 with no body, like every other link; nothing is read or
    recorded."""


@post("/u", name="unsubscribe", status_code=HTTP_200_OK, include_in_schema=False)
async def unsubscribe(
    request: Request[object, object, State], service: ServiceDep, t: FromQuery[str | None] = None
) -> Template:
    form = await request.form()  # URL-encoded or multipart: RFC 8058 allows both.
    if (ONE_CLICK[0], ONE_CLICK[1]) not in form.items():
        raise ClientException(detail="Expected the body List-Unsubscribe=One-Click (RFC 8058).")
    user_agent = request.headers.get("user-agent", "")
    locale = await service.unsubscribe_locale(t)  # Read before: an erasure may follow.
    done = await service.unsubscribe(t, evidence_ip(request), user_agent)
    return _page(request, "done" if done else "invalid", None, locale)
