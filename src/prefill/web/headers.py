"""Privacy headers on every response, set once for the whole app as a `before_send` hook."""

from __future__ import annotations

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


_ENCODED = [(name.lower().encode(), value.encode()) for name, value in PRIVACY_HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")


async def add_privacy_headers(message: Message, scope: Scope) -> None:
    """Add the privacy headers; `no-store` unless a handler chose caching (static assets).
    One pass over the raw headers: this runs for every response."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", ()))
    present = {name.lower() for name, _ in headers}
    headers += [header for header in _ENCODED if header[0] not in present]
    if _NO_STORE[0] not in present:
        headers.append(_NO_STORE)
    message["headers"] = headers
