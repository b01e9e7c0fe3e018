"""Privacy headers on every response: added by the request layer (web/requests.py) to the
responses of routes, and by the exception handlers (web/errors.py) to the answers given before
a route is found or outside that layer (an unknown path, a refused host, a CSRF refusal).
Not a `before_send` hook: Litestar's wrapper of every send for it cost `/health/live` about a
sixth of its instructions (callgrind)."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

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
}
DOCUMENT_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
"""What a browser applies only to a document it renders: every answer but JSON gets them (two
headers less cost the widget's answer about 2% of its instructions, in uvicorn's checks)."""
NO_STORE = {"Cache-Control": "no-store"}
"""Unless a handler chose caching (static assets)."""

Header = tuple[bytes, bytes]
JSON_TYPE = "application/json"


def _encoded(headers: dict[str, str]) -> list[Header]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


_FOR_JSON = _encoded(PRIVACY_HEADERS | NO_STORE)
_FOR_DOCUMENTS = _encoded(PRIVACY_HEADERS | DOCUMENT_HEADERS | NO_STORE)
_JSON_CONTENT = (b"content-type", JSON_TYPE.encode())


def with_privacy_headers(headers: Iterable[Header]) -> list[Header]:
    """Raw ASGI headers with each privacy header the response does not set itself."""
    given = list(headers)
    present = {name.lower() for name, _ in given}
    extra = _FOR_JSON if _JSON_CONTENT in given else _FOR_DOCUMENTS
    return given + [header for header in extra if header[0] not in present]


def add_privacy_headers(headers: MutableMapping[str, str], media_type: str | None) -> None:
    """A Litestar response's headers, with each privacy header it does not set itself."""
    present = {name.lower() for name in headers}
    document = {} if media_type == JSON_TYPE else DOCUMENT_HEADERS
    for name, value in (PRIVACY_HEADERS | document | NO_STORE).items():
        if name.lower() not in present:
            headers[name] = value
