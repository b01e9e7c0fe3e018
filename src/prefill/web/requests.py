"""One pure-ASGI layer around every route: a request id, the privacy headers (web/headers.py),
the access line and the request metrics, measured once per request instead of by a stack of
separate layers.

The line names the route template, never the raw path (admin paths hold customer ids, links hold
tokens in the query), and no header value or client address. A caller's `X-Request-ID` is kept
only in the shape tracing tools give it (hex or a UUID: no name or email can be read from it,
only smuggled in encoded); otherwise the request gets a fresh one.
Litestar runs route middleware only for requests that match a route: a path or method the
router does not know (404, 405) is answered before this and gets no line and no metrics.
A fast route (web/fast.py) is answered from here by its own ASGI function.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from prefill.logs import REQUEST_ID, AccessLine, log_access
from prefill.metrics import NOT_MEASURED, REQUEST_METRICS
from prefill.web.fast import FAST_ROUTE, fast_stack
from prefill.web.headers import with_privacy_headers

logger = logging.getLogger("prefill.requests")

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{16,64}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
)
"""Hex or a UUID: what proxies and tracing tools send; nothing readable fits in it."""


def request_id_of(scope: Scope) -> str:
    """The caller's id when it has a safe shape, else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            supplied = value.decode("latin-1")
            if REQUEST_ID_PATTERN.fullmatch(supplied):
                return supplied
            break
    return secrets.token_hex(16)  # As random as a UUID4's hex, without building a UUID.


class RequestMiddleware:
    """Binds `request_id` to every log line of the request, answers it in `X-Request-ID`, logs
    the method, route, status and duration, and counts and times the request by route."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._metrics = REQUEST_METRICS
        self._inner: dict[int, ASGIApp] = {}
        """What answers each route handler this layer wraps (Litestar makes one per handler)."""

    def _inner_app(self, scope: Scope) -> ASGIApp:
        handler = scope["route_handler"]
        inner = self._inner.get(id(handler))
        if inner is None:
            app = scope["litestar_app"]
            fast = FAST_ROUTE in handler.opt and app.state.get("fast_routes", True)
            inner = fast_stack(app, handler, type(self)) if fast else self._app
            self._inner[id(handler)] = inner
        return inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER, request_id.encode())
        status = 500  # Until the response starts, or an exception says otherwise.
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*with_privacy_headers(message.get("headers", ())), header]
            await send(message)

        method: str = scope["method"]
        route: str = scope["path_template"]
        inner = self._inner_app(scope)
        measured = not scope["route_handler"].opt.get(NOT_MEASURED)
        if measured:
            self._metrics.started(method, route)
        bound = REQUEST_ID.set(request_id)  # on every line logged meanwhile (logs.py)
        try:
            await inner(scope, receive, send_with_id)
        except Exception as exc:
            # Raised by a middleware inside this one (CSRF, allowed hosts, admin port) and
            # answered by the app's exception handlers outside it, without this header.
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            raise
        finally:
            try:
                seconds = time.perf_counter() - started
                if measured:
                    self._metrics.finished(method, route, status, seconds)
                duration_ms = round(seconds * 1000, 1)
                line = AccessLine(
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=duration_ms,
                    request_id=request_id,
                )
                log_access(logger, line)
            finally:
                REQUEST_ID.reset(bound)
