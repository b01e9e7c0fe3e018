"""The CSRF cookie header built from its fixed parts is the one Litestar's middleware builds."""

from __future__ import annotations

import secrets
from typing import Any, cast
from unittest.mock import ANY

import pytest
from litestar import Litestar, get
from litestar.config.csrf import CSRFConfig
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import HTTPRequestEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from prefill.web.csrf import CookieOnceCSRF


async def no_app(*_: object) -> None:
    raise AssertionError("not called")


def cookie_headers(middleware: CSRFMiddleware, token: str) -> list[tuple[bytes, bytes]]:
    message: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html")],
    }
    middleware._set_cookie_if_needed(message, token)
    return list(message["headers"])


@pytest.mark.parametrize("secure", [True, False])
@pytest.mark.parametrize("samesite", ["strict", "lax"])
def test_the_cookie_is_the_one_litestar_sets(secure: bool, samesite: str) -> None:
    config = CSRFConfig(
        secret=secrets.token_hex(32),
        cookie_name="prefill_csrf",
        cookie_httponly=True,
        cookie_samesite=samesite,  # type: ignore[arg-type]
        cookie_secure=secure,
    )
    ours, litestars = CookieOnceCSRF(no_app, config), CSRFMiddleware(no_app, config)
    for token in (generate_csrf_token(config.secret), "a b;c", "ÄÖ", ""):
        assert cookie_headers(ours, token) == cookie_headers(litestars, token)


COOKIE_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [(b"cookie", b"prefill_csrf=abc123")],
    [(b"cookie", b'other=1; prefill_csrf="q%20uoted"; third')],
    [(b"cookie", b"prefill_csrf=first"), (b"cookie", b"prefill_csrf=second")],
    [(b"cookie", b"other=1")],
    [(b"cookie", b"")],
    [(b"x-csrftoken", b"header-token")],
]


async def handed_out(
    middleware: CSRFMiddleware, headers: list[tuple[bytes, bytes]]
) -> tuple[Any, ...]:
    """What a GET through `middleware` gives the page (its token) and the response headers."""
    app = Litestar(route_handlers=[page])
    scope: dict[str, object] = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": headers,
        "route_handler": page,
        "litestar_app": app,
        "app": app,
        "state": {},
        "path_params": {},
    }
    seen: dict[str, object] = {}
    sent: list[Message] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen["token"] = ScopeState.from_scope(scope).csrf_token
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> HTTPRequestEvent:
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware.app = inner
    await middleware(cast(Scope, scope), receive, send)
    return seen["token"], [list(cast(Any, message).get("headers", [])) for message in sent]


@get("/", sync_to_thread=False)
def page() -> None:
    """A route for the scope."""


@pytest.mark.parametrize("headers", COOKIE_HEADERS)
async def test_a_get_gets_the_token_litestars_middleware_gives(
    headers: list[tuple[bytes, bytes]],
) -> None:
    config = CSRFConfig(secret=secrets.token_hex(32), cookie_name="prefill_csrf")
    ours = await handed_out(CookieOnceCSRF(no_app, config), headers)
    litestars = await handed_out(CSRFMiddleware(no_app, config), headers)
    if b"prefill_csrf" in b"".join(value for _, value in headers):
        assert ours == litestars
    else:  # A new visitor: a fresh token each, set as the cookie.
        for token, sent in (ours, litestars):
            assert token
            assert sent == [[(b"set-cookie", ANY)]]
            assert f"prefill_csrf={token};".encode() in sent[0][0][1]
