"""A QR code of a contact person's vCard, as inline SVG: drawn on the server, nothing fetched."""

from __future__ import annotations

import functools

import segno
from markupsafe import Markup

from prefill.i18n import pick
from prefill.models import ContactPerson, Locale
from prefill.vcard import to_vcard


def vcard_qr(person: ContactPerson, locale: Locale, organization: str, label: str) -> Markup:
    """An `<svg role="img">` named `label`. The vCard goes without its photo: a photo would
    not fit in a QR code, and the phone that scans it can fetch the card with its photo."""
    text = to_vcard(person, title=pick(person.title, locale), organization=organization)
    return _qr_svg(text, label)


@functools.lru_cache(maxsize=512)
def _qr_svg(text: str, label: str) -> Markup:
    """Drawing a code costs milliseconds; the same contact person's card gives the same code to
    every customer who has them. The key is staff contact data (no customer's value, no token)."""
    code = segno.make(text, error="m", micro=False)
    # segno escapes the title; its SVG has presentation attributes only, no inline styles,
    # so the pages' Content-Security-Policy (style-src 'self') allows it as it is.
    svg = code.svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=label, svgclass="qr", omitsize=True
    )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 (segno's own SVG)
