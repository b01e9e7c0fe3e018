"""The CSRF cookie header built from its fixed parts is the one Litestar's middleware builds."""

from __future__ import annotations

import secrets

import pytest
from litestar.config.csrf import CSRFConfig
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import HTTPResponseStartEvent

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
