"""Fast routes: the busiest public routes answered by a plain ASGI function, without Litestar's
per-request handling (a Request object, parameter parsing, dependency injection and response
building), which cost about a fifth of a widget request (profiled).

A route handler names its function in its `opt` under `FAST_ROUTE`; the request layer
(web/requests.py) then calls the function inside the same layers Litestar would have run for the
route: the other middleware, the allowed hosts check and the exception handlers, so a refusal,
an error and every header come out as before. The handler itself calls the same function, so the
API document, Litestar's own test client and a handler-level call still behave the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast
from urllib.parse import unquote_plus

from litestar import Litestar
from litestar._asgi.utils import is_valid_host, wrap_in_exception_handler
from litestar.enums import ScopeType
from litestar.exceptions import LitestarException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.middleware._internal.exceptions.middleware import ExceptionHandlerMiddleware
from litestar.middleware.allowed_hosts import AllowedHostsMiddleware
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, ExceptionHandlersMap, HTTPScope, Receive, Scope, Send
from litestar.utils.path import normalize_path
from litestar.utils.scope.state import ScopeState

FAST_ROUTE = "fast_route"
"""A route handler `opt` key: the ASGI function that answers the route (see the module's doc)."""

FastRoute = Callable[[Scope, Receive, Send], Awaitable[None]]


class Answer(ASGIResponse):
    """An ASGIResponse from headers already encoded, as lower-case names: Litestar's builds them
    through a headers object per response. It still adds no cookie and no background task."""

    def __init__(
        self, body: bytes, headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        # ASGIResponse.__init__ is not called: its whole work is the headers object.
        self.body = body
        self.status_code = status_code
        self.background = None
        self.is_head_response = False
        self._headers = [*headers, (b"content-length", str(len(body)).encode())]

    def encode_headers(self) -> list[tuple[bytes, bytes]]:
        return self._headers


def query_value(scope: Scope, name: str) -> str | None:
    """A query parameter as Litestar gives a handler's plain `str` parameter: decoded from
    Latin-1, blank values kept, the last of repeated values. Split as `parse_qsl` splits (on
    "&"; "+" a space; percent-escapes as UTF-8), unquoting only the pair asked for: most of
    parse_qsl's cost is its checks and the pairs no one reads. Not cached: queries carry tokens."""
    value = None
    query: bytes = scope["query_string"]
    if name.encode() in query or b"%" in query or b"+" in query:  # (a name may be escaped)
        for pair in query.decode("latin-1").split("&"):
            key, _, item = pair.partition("=")
            plain = "%" not in key and "+" not in key
            if pair and (key if plain else unquote_plus(key)) == name:
                value = unquote_plus(item)
    return value


def fast_stack(app: Litestar, handler: BaseRouteHandler, outer: type) -> ASGIApp:
    """The handler's fast function inside the layers Litestar puts between `outer` (the request
    layer) and the route (litestar/_asgi/routing_trie/mapping.py: exception handlers, allowed
    hosts, then the handler's other middleware, innermost first)."""
    if app.csrf_config or app.compression_config or getattr(handler, "cache", False):
        # Layers this app does not use (CSRF is per route here) and this stack does not add.
        raise NotImplementedError("a fast route with app-wide CSRF, compression or caching")
    if isinstance(handler, HTTPRouteHandler) and (
        handler.resolve_guards()
        or handler.resolve_before_request()
        or any(layer.after_request for layer in handler.ownership_layers)
        or handler.resolve_after_response()
    ):
        # What Litestar runs around a handler, which a fast function would skip unseen.
        raise NotImplementedError(f"a fast route with guards or hooks: {handler}")
    stack: ASGIApp = wrap_in_exception_handler(handler.opt[FAST_ROUTE])
    if app.allowed_hosts and "*" not in app.allowed_hosts.allowed_hosts:
        # With "*" Litestar's layer lets every request through: one call less without it.
        stack = AllowedHostsMiddleware(app=stack, config=app.allowed_hosts)
    for layer in handler.resolve_middleware():
        if layer is outer:
            break  # The request layer itself, the outermost.
        # A middleware class, a DefineMiddleware, or the older (class, kwargs) pair.
        factory, kwargs = layer if isinstance(layer, tuple) else (layer, dict[str, Any]())
        stack = cast(Any, factory)(app=stack, **kwargs)
    return stack


class FastDoor:
    """The app's ASGI handler (`Litestar.asgi_handler`): a fast route's request goes straight to
    the route, as Litestar's router would send it; every other request to Litestar's own handler.

    What it saves is the app-wide exception layer's wrapper of every send and the router's
    per-request steps (instructions.py: widget 2%, `/health/live` 7%). What they do is kept:
    an invalid Host header, an unknown path or method and a `root_path` go the usual way, and
    an exception out of the route's layers is answered by the same exception layer's handling,
    from the route's handlers."""

    def __init__(self, app: Litestar) -> None:
        handler = app.asgi_handler
        if not isinstance(handler, ExceptionHandlerMiddleware):
            # CORS or OpenTelemetry wrap Litestar's handler: they would be skipped.
            raise NotImplementedError(f"fast routes behind {type(handler).__name__}")
        self._litestar = handler
        self._router = app.asgi_router
        self._handlers: dict[int, ExceptionHandlersMap | None] = {}
        """Each route handler's exception handlers if it has a fast function, else None."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._fast_route(scope) if scope["type"] == ScopeType.HTTP else None
        if route is None:
            await self._litestar(scope, receive, send)
            return
        try:
            await route(scope, receive, send)
        except Exception as exc:
            # The route's own exception layer (web/fast.py's stack) marks a started answer.
            if ScopeState.from_scope(scope).response_started:
                raise LitestarException("Exception caught after response started") from exc
            app = scope["litestar_app"]
            await self._litestar.handle_request_exception(app, scope, receive, send, exc)

    def _fast_route(self, scope: Scope) -> ASGIApp | None:
        """The route's ASGI app, with the scope set as the router sets it, for a fast route."""
        if scope.get("root_path"):
            return None
        for name, value in scope["headers"]:
            if name == b"host":
                if not is_valid_host(value):
                    return None  # The router's 400.
                break
        try:
            app, handler, path, params, template = self._router.handle_routing(
                normalize_path(scope["path"]), cast("HTTPScope", scope)["method"]
            )
        except Exception:  # An unknown path or method: the router's 404 or 405.
            return None
        if id(handler) not in self._handlers:
            fast = FAST_ROUTE in handler.opt
            self._handlers[id(handler)] = handler.resolve_exception_handlers() if fast else None
        handlers = self._handlers[id(handler)]
        if handlers is None:
            return None
        ScopeState.from_scope(scope).exception_handlers = handlers
        scope["path"] = path
        scope["path_params"] = params
        scope["route_handler"] = handler
        scope["path_template"] = template
        return app
