"""widget.js for landing pages on other sites: served under its content hash, cached for a year.

Its few texts (the contact card's labels) come from the gettext catalogs and are written into
the script when it is first built, so the hash changes whenever the script or a text does.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path

import msgspec
from litestar import Response, Router, get
from litestar.params import FromPath
from litestar.response import Redirect
from litestar.status_codes import HTTP_302_FOUND

from prefill.i18n import N_, translate
from prefill.models import SUPPORTED_LOCALES

SOURCE = Path(__file__).with_name("widget.js")
TEXTS_PLACEHOLDER = "__PREFILL_TEXTS__"
TEXTS = {
    "heading": N_("Your contact person"),
    "call": N_("Call"),
    "add_to_contacts": N_("Add to contacts"),
}
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"
"""For the unversioned URL's redirect and for an old version's URL: the current script soon."""


class WidgetScript(msgspec.Struct, frozen=True):
    body: bytes
    version: str
    """The first 16 hex digits of the body's SHA-256: in the URL, so a new script is a new URL."""
    integrity: str
    """For a host page's `integrity` attribute (Subresource Integrity)."""

    @property
    def path(self) -> str:
        return f"/widget/{self.version}/widget.js"


@functools.cache
def widget_script() -> WidgetScript:
    texts = {
        locale: {key: translate(locale, text) for key, text in TEXTS.items()}
        for locale in SUPPORTED_LOCALES
    }
    source = SOURCE.read_text(encoding="utf-8")
    body = source.replace(TEXTS_PLACEHOLDER, json.dumps(texts, ensure_ascii=False)).encode()
    return WidgetScript(
        body=body,
        version=hashlib.sha256(body).hexdigest()[:16],
        integrity="sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode(),
    )


@get("/widget.js", name="widget_latest", include_in_schema=False)
async def widget_latest() -> Redirect:
    """The current version's URL. Host pages may embed this one and still get year-long caching
    of the script itself; only the redirect is re-checked every few minutes."""
    return Redirect(
        widget_script().path, status_code=HTTP_302_FOUND, headers={"Cache-Control": SHORT_CACHE}
    )


@get("/widget/{version:str}/widget.js", name="widget_versioned", include_in_schema=False)
async def widget_versioned(version: FromPath[str]) -> Response[bytes]:
    script = widget_script()
    return Response(
        script.body,
        media_type="text/javascript",
        headers={
            # An old version's URL still gets a working script (no redirect loops between
            # instances mid-deploy), but only the current one may be cached for good.
            "Cache-Control": IMMUTABLE if version == script.version else SHORT_CACHE,
            # Loaded by pages on other origins, also ones that require CORP or use SRI.
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Access-Control-Allow-Origin": "*",
        },
    )


widget_router = Router(path="/", route_handlers=[widget_latest, widget_versioned])
