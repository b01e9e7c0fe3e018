"""CSRF protection (Litestar's: a cookie and a hidden field) on the hosted form's page, which
hands them out, and its submit and consent withdrawal, which check them; on no other route.

The widget, its API, the admin API (bearer keys), "Not you?" (the link token is its proof, and
it is Origin-checked) and one-click unsubscribe (mail providers post it from their servers) take
no cookie, so they do not pay for the middleware on every request either.
"""

from __future__ import annotations

import hashlib
import hmac

from litestar._parsers import parse_cookie_string
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware.csrf import CSRFMiddleware, generate_csrf_token
from litestar.types import ASGIApp, HTTPSendMessage, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from prefill.settings import Settings


def csrf_config(settings: Settings) -> CSRFConfig:
    """The cookie and its secret, derived from the newest signing key; kept in the app's state
    for `FormCSRF`."""
    secret = hmac.new(settings.secret_keys[-1].encode(), b"prefill.csrf", hashlib.sha256)
    return CSRFConfig(
        secret=secret.hexdigest(),
        cookie_name="prefill_csrf",
        cookie_httponly=True,
        cookie_samesite="strict",
        cookie_secure=settings.public_url.startswith("https://"),
    )


class CookieOnceCSRF(CSRFMiddleware):
    """Litestar's CSRFMiddleware, with the cookie header's fixed part built once: Litestar builds
    each new visitor's cookie through `http.cookies.SimpleCookie` (about a twelfth of a refused
    link's CPU, profiled; every request without the cookie gets one). A GET only hands out the
    token: it is read from the cookie header without the `Request` object, content type and
    header parsing that Litestar's middleware builds for every method (about a twentieth of a
    form page's CPU, profiled), as Litestar parses it."""

    _SLOT = "csrftokenslot"
    """Letters only, as the tokens (hex): the cookie module quotes neither."""

    def __init__(self, app: ASGIApp, config: CSRFConfig) -> None:
        super().__init__(app, config)
        header = self._cookie(self._SLOT).to_header(header="")
        self._cookie_start, self._cookie_end = header.split(self._SLOT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] not in self.config.safe_methods
            or self.exclude is not None
            or scope["route_handler"].opt.get(self.config.exclude_from_csrf_key)
        ):
            await super().__call__(scope, receive, send)
            return
        cookie = _cookie_value(scope, self.config.cookie_name)
        token = cookie or generate_csrf_token(secret=self.config.secret)
        ScopeState.from_scope(scope).csrf_token = token
        await self.app(scope, receive, self.create_send_wrapper(send, token, cookie))

    def _cookie(self, token: str) -> Cookie:
        """The cookie as Litestar's CSRFMiddleware makes it."""
        return Cookie(
            key=self.config.cookie_name,
            value=token,
            path=self.config.cookie_path,
            secure=self.config.cookie_secure,
            httponly=self.config.cookie_httponly,
            samesite=self.config.cookie_samesite,
            domain=self.config.cookie_domain,
        )

    def _set_cookie_if_needed(self, message: HTTPSendMessage, token: str) -> None:
        if not (token.isascii() and token.isalnum()):
            super()._set_cookie_if_needed(message, token)  # Not one of ours: Litestar's way.
            return
        header = f"{self._cookie_start}{token}{self._cookie_end}"
        MutableScopeHeaders.from_message(message).add("set-cookie", header)


def _cookie_value(scope: Scope, name: str) -> str | None:
    """The named cookie of the request's first Cookie header, as `Request.cookies` gives it."""
    for header, value in scope["headers"]:
        if header == b"cookie":
            return parse_cookie_string(value.decode("latin-1")).get(name)
    return None


class FormCSRF:
    """Litestar's CSRFMiddleware as one route handler's middleware. Handlers are declared before
    any app exists, and the secret is each app's: the config is read from the app's state on
    the first request the route gets."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._csrf: CSRFMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._csrf is None:
            self._csrf = CookieOnceCSRF(self._app, scope["litestar_app"].state.csrf_config)
        await self._csrf(scope, receive, send)
