"""widget.js as a cacheable cross-origin asset, and the card page's QR code of the vCard."""

from __future__ import annotations

import re

import segno
from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.i18n import translate
from prefill.links import LinkBuilder
from prefill.store import Repository
from prefill.web.widget import widget_script
from tests.helpers import card_link

Client = AsyncTestClient[Litestar]


async def test_unversioned_url_redirects_to_the_current_version(client: Client) -> None:
    response = await client.get("/widget.js", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == widget_script().path
    assert re.fullmatch(r"/widget/[0-9a-f]{16}/widget\.js", response.headers["location"])
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_versioned_script_is_immutable_and_loadable_from_any_origin(client: Client) -> None:
    response = await client.get(widget_script().path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in response.headers
    assert len(response.content) < 8 * 1024, "a few KB"


async def test_script_carries_the_card_texts_of_every_language(client: Client) -> None:
    script = (await client.get(widget_script().path)).text
    assert "__PREFILL_TEXTS__" not in script
    for locale in ("fi", "sv", "en"):
        assert translate(locale, "Add to contacts") in script
    for forbidden in ("localStorage", "sessionStorage", "document.cookie"):
        assert forbidden not in script


async def test_an_old_version_still_works_but_is_not_cached_for_long(client: Client) -> None:
    response = await client.get("/widget/0000000000000000/widget.js")
    assert response.status_code == 200
    assert response.content == widget_script().body
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_card_page_has_an_inline_qr_code_of_the_vcard_without_photo(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    url = await card_link(repository, links, "cust-1003")
    page = (await client.get(url)).text
    svg = re.search(r'<svg role="img".*?</svg>', page, re.DOTALL)
    assert svg is not None
    assert "<title>Visitkortets QR-kod</title>" in svg.group()
    assert "style=" not in svg.group(), "the CSP allows no inline styles"
    vcard = (await client.get(url.replace("/card?", "/card/vcard?"))).text
    assert "PHOTO" in vcard
    without_photo = "".join(
        line + "\r\n"
        for line in vcard.split("\r\n")
        if line and not line.startswith(("PHOTO", " "))
    )
    assert "FN:Johan Lindqvist" in without_photo
    assert dark_modules(svg.group()) == expected_modules(without_photo)


QR_BORDER = 4


def dark_modules(svg: str) -> set[tuple[int, int]]:
    """(x, y) of the dark modules drawn by segno's SVG path of horizontal runs."""
    path = re.search(r'stroke="#000" d="([^"]+)"', svg)
    assert path is not None
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, first, second in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path[1]):
        if command == "h":
            dark |= {(int(x) + i, int(y)) for i in range(int(first))}
            x += float(first)
        elif command == "M":
            x, y = float(first), float(second)
        else:
            x, y = x + float(first), y + float(second)
    return dark


def expected_modules(text: str) -> set[tuple[int, int]]:
    matrix = segno.make(text, error="m", micro=False).matrix
    return {
        (column + QR_BORDER, row + QR_BORDER)
        for row, values in enumerate(matrix)
        for column, value in enumerate(values)
        if value
    }
