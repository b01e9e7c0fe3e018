"""One mapping from exceptions to responses: JSON for the API, a plain page for people.

No stack trace or exception text ever reaches a client; a failure that is not the client's is
logged by type only, so no personal value slips into the logs through an exception message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.status_codes import (
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from prefill import metrics
from prefill.admin import Conflict, Forbidden, InvalidReference, NotFound
from prefill.i18n import negotiate_locale
from prefill.ratelimit import RateLimited
from prefill.services import UnknownForm
from prefill.store import RequestConflict, StoreUnavailable
from prefill.web.headers import add_privacy_headers

logger = logging.getLogger("prefill.errors")

RETRY_AFTER_SECONDS = "5"
AnyRequest = Request[object, object, State]


def _wants_json(request: AnyRequest) -> bool:
    path = request.url.path
    return (
        path.startswith(("/api/", "/health/", "/admin/"))
        or path == "/schema"
        or path.startswith("/schema/")
    )


def message_page(request: AnyRequest, status_code: int, kind: str, detail: str = "") -> Template:
    """A plain page with the `<kind>_title` and `<kind>_body` texts, in the visitor's language."""
    locale = negotiate_locale(request.headers.get("accept-language"))
    return Template(
        template_name="error.html",
        context={"locale": locale, "kind": kind, "detail": detail},
        status_code=status_code,
    )


class ErrorOut(msgspec.Struct, frozen=True, omit_defaults=True):
    """Every JSON error: the status again, what was wrong, and for validation, per field."""

    status_code: int
    detail: str
    extra: object = None


def _json_error(status_code: int, detail: str, extra: object = None) -> Response[Any]:
    body = ErrorOut(status_code=status_code, detail=detail, extra=extra or None)
    return Response(body, status_code=status_code, media_type=MediaType.JSON)


def log_unavailable(exc: StoreUnavailable) -> None:
    logger.warning("redis unavailable: %s", exc.failure())


def store_unavailable(request: AnyRequest, exc: StoreUnavailable) -> Response[Any]:
    log_unavailable(exc)
    response: Response[Any]
    if _wants_json(request):
        response = _json_error(HTTP_503_SERVICE_UNAVAILABLE, "Service temporarily unavailable.")
    else:
        response = message_page(request, HTTP_503_SERVICE_UNAVAILABLE, "unavailable")
    response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def rate_limited(request: AnyRequest, exc: RateLimited) -> Response[Any]:
    """The same answer whichever limit it was (no oracle): the kind goes to the metrics only.
    Nothing was written to the audit for it."""
    metrics.count_rate_limited(exc.kind)
    response: Response[Any]
    if _wants_json(request):
        response = _json_error(HTTP_429_TOO_MANY_REQUESTS, "Too many requests; try again later.")
    else:
        response = message_page(request, HTTP_429_TOO_MANY_REQUESTS, "too_many")
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def unknown_form(request: AnyRequest, exc: UnknownForm) -> Response[Any]:
    if _wants_json(request):
        return _json_error(HTTP_404_NOT_FOUND, "No form with this id.")
    return message_page(request, HTTP_404_NOT_FOUND, "not_found")


def http_exception(request: AnyRequest, exc: HTTPException) -> Response[Any]:
    """API clients get JSON with the detail; people get a page in their language that still
    says what was wrong (the detail is Litestar's or ours, never an echo of personal input)."""
    if _wants_json(request):
        response = _json_error(exc.status_code, exc.detail, exc.extra)
        response.headers.update(exc.headers or {})  # e.g. WWW-Authenticate on a 401
        return response
    if exc.status_code in (404, 405):
        return message_page(request, exc.status_code, "not_found")
    if exc.status_code >= 500:
        return message_page(request, exc.status_code, "unavailable")
    return message_page(request, exc.status_code, "bad_request", exc.detail)


def admin_error(request: AnyRequest, exc: Exception) -> Response[Any]:
    """The admin use cases' refusals; their messages name ids and fields, never values."""
    status_code = ADMIN_ERROR_STATUS[type(exc)]
    return _json_error(status_code, str(exc) or type(exc).__name__)


def request_conflict(request: AnyRequest, exc: RequestConflict) -> Response[Any]:
    return _json_error(
        HTTP_409_CONFLICT,
        "This Idempotency-Key was already used for a different request; use a new key.",
    )


ADMIN_ERROR_STATUS: dict[type[Exception], int] = {
    Forbidden: HTTP_403_FORBIDDEN,
    NotFound: HTTP_404_NOT_FOUND,
    Conflict: HTTP_409_CONFLICT,
    InvalidReference: HTTP_422_UNPROCESSABLE_ENTITY,
}


def internal_error(request: AnyRequest, exc: Exception) -> Response[Any]:
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template", "?"),
    )
    if _wants_json(request):
        return _json_error(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error.")
    return message_page(request, HTTP_500_INTERNAL_SERVER_ERROR, "unavailable")


Handler = Callable[[AnyRequest, Any], Response[Any]]


def _with_privacy_headers(handler: Handler) -> Handler:
    """An answer given outside the request layer (an unknown path, a refused host or CSRF
    token) gets the privacy headers here; inside it, they are already there."""

    @functools.wraps(handler)
    def answer(request: AnyRequest, exc: Any) -> Response[Any]:
        response = handler(request, exc)
        add_privacy_headers(response.headers, response.media_type)
        return response

    return answer


_HANDLERS: dict[type[Exception], Handler] = {
    StoreUnavailable: store_unavailable,
    RateLimited: rate_limited,
    UnknownForm: unknown_form,
    HTTPException: http_exception,
    NotFound: admin_error,
    Forbidden: admin_error,
    Conflict: admin_error,
    InvalidReference: admin_error,
    RequestConflict: request_conflict,
    Exception: internal_error,
}
EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    exception: _with_privacy_headers(handler) for exception, handler in _HANDLERS.items()
}
