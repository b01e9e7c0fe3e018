"""A request id for every request, and one access-log line when it ends.

The line names the route template, never the raw path (admin paths hold customer ids, links hold
tokens in the query), and no header value or client address. A caller's `X-Request-ID` is kept
only in the shape tracing tools give it (hex or a UUID: no name or email can be read from it,
only smuggled in encoded); otherwise the request gets a fresh one.
Litestar runs middleware only for requests that match a route: a path or method the router does
not know (404, 405) is answered before this and gets no line, as it gets no metrics.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bound_contextvars

logger = logging.getLogger("prefill.requests")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{16,64}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)
"""Hex or a UUID: what proxies and tracing tools send; nothing readable fits in it."""


def request_id_of(scope: Scope) -> str:
    """The caller's id when it has a safe shape, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            supplied = value.decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(supplied):
                return supplied
            break
    return uuid.uuid4().hex


class RequestLogMiddleware(ASGIMiddleware):
    """Binds `request_id` to every log line of the request, answers it in `X-Request-ID`,
    and logs the method, route, status and duration."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] != ScopeType.HTTP:  # Never, given `scopes`; it narrows the type.
            await next_app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        status = 500  # Until the response starts, or an exception says otherwise.
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with bound_contextvars(request_id=request_id):
            try:
                await next_app(scope, receive, send_with_id)
            except Exception as exc:
                # Raised by a middleware inside this one (CSRF, allowed hosts, admin port) and
                # answered by the app's exception handlers outside it, without this header.
                status = exc.status_code if isinstance(exc, HTTPException) else 500
                raise
            finally:
                logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": scope["path_template"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
