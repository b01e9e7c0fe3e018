"""Privacy headers on every response, set once for the whole app as a `before_send` hook."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

PRIVACY_HEADERS = {
    # Pages carry tokens in their URL and personal data in their body: never let either travel.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


async def add_privacy_headers(message: Message, scope: Scope) -> None:
    """Add the privacy headers; `no-store` unless a handler chose caching (static assets)."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in PRIVACY_HEADERS.items():
        if name not in headers:
            headers[name] = value
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
