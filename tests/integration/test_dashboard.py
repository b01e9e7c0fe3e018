"""The funnel through the admin surfaces: the dashboard page (SVG drawn on the server), the JSON
and the CSV, all behind the admin key."""

from __future__ import annotations

import base64
import csv
import io
import re

from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.apikeys import Scope
from prefill.links import LinkBuilder
from prefill.store import Repository
from prefill.web.dashboard import text_width
from tests.helpers import (
    API_PATH,
    CAMPAIGN_ID,
    FORM_ID,
    form_as_shown,
    form_link,
    key_headers,
    token_of,
)

Client = AsyncTestClient[Litestar]
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"}


def basic(headers: dict[str, str]) -> dict[str, str]:
    """The key as a browser's login prompt sends it: Basic, the key as the password."""
    key = headers["Authorization"].removeprefix("Bearer ")
    return {"Authorization": "Basic " + base64.b64encode(f"anyone:{key}".encode()).decode()}


def bar_values(page: str, campaign_id: str = CAMPAIGN_ID) -> dict[str, int]:
    """The bars of one campaign's section (the examples have a campaign per form)."""
    (section,) = [part for part in page.split('<section class="campaign"') if campaign_id in part]
    return {k: int(v) for k, v in re.findall(r'data-key="([^"]+)" data-value="(\d+)"', section)}


async def some_traffic(client: Client, repository: Repository, links: LinkBuilder) -> None:
    """Two people open their links in a browser; scanners fetch, HEAD and preview them."""
    for customer_id in ("cust-1001", "cust-1003"):
        url = await form_link(repository, links, customer_id)
        await client.head(url)
        await client.get(url, headers={"User-Agent": "Barracuda Sentinel (EE)"})
        await client.get(url, headers=BROWSER)
        seen = await client.post(
            "/seen",
            data={"t": token_of(url)},
            headers=BROWSER | {"Sec-Fetch-Site": "same-origin"},
        )
        assert seen.status_code == 204
    widget = await form_link(repository, links, "cust-1005")
    await client.get(
        API_PATH,
        params={"t": token_of(widget)},
        headers=BROWSER | {"Origin": "http://127.0.0.1:8001"},
    )


async def test_the_dashboard_charts_only_browser_opens_as_opens(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await some_traffic(client, repository, links)
    headers = await key_headers(repository, Scope.READ)
    page = await client.get("/admin/dashboard", headers=basic(headers))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text
    assert "<script" not in page.text
    values = bar_values(page.text)
    assert values["opened"] == 3
    assert values["prefilled"] == 3
    assert values["scanner-head"] == 2
    assert values["scanner-agent"] == 2
    assert values["loads"] == 2
    assert "Spring Summit 2027 invitation" in page.text


async def test_the_dashboard_asks_a_browser_for_the_key(
    client: Client, repository: Repository
) -> None:
    anonymous = await client.get("/admin/dashboard")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Basic realm="prefill admin"')
    wrong = await client.get("/admin/dashboard", headers=basic({"Authorization": "Bearer x"}))
    assert wrong.status_code == 401
    not_read = basic(await key_headers(repository, Scope.CONSENT))
    assert (await client.get("/admin/dashboard", headers=not_read)).status_code == 403
    for garbled in (
        b"Basic %%%",
        "Basic é".encode(),
        b"Basic " + base64.b64encode(b"\xff:\xfe"),
    ):
        answer = await client.get("/admin/dashboard", headers=[(b"authorization", garbled)])
        assert answer.status_code == 401, garbled


async def test_a_key_remembered_by_a_browser_cannot_change_anything(
    client: Client, repository: Repository
) -> None:
    """A browser sends remembered Basic credentials with any request, a cross-site form's too:
    only read-only pages take the key that way; every change wants it as a Bearer token."""
    remembered = basic(await key_headers(repository, Scope.CONSENT, Scope.DATA, Scope.READ))
    forged = await client.post(
        "/admin/api/v1/customers/cust-1003/consent",
        content=b'{"purpose": "email_marketing", "action": "withdrawn"}',
        headers=remembered | {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer")
    revoke = await client.post(f"/admin/api/v1/campaigns/{CAMPAIGN_ID}/revoke", headers=remembered)
    assert revoke.status_code == 401
    assert (
        await client.get("/admin/api/v1/customers/cust-1003", headers=remembered)
    ).status_code == 401
    assert (await client.get("/admin/api/v1/funnel", headers=remembered)).status_code == 200


async def test_the_same_figures_as_json_and_csv(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await some_traffic(client, repository, links)
    headers = await key_headers(repository, Scope.READ)
    campaigns = (await client.get("/admin/api/v1/funnel", headers=headers)).json()
    (figures,) = [f for f in campaigns if f["campaign_id"] == CAMPAIGN_ID]
    assert (figures["opened"], figures["prefilled"], figures["loads"]) == (3, 3, 2)
    assert figures["scanner_hits"] == {"head": 2, "agent": 2, "early": 0}
    answer = await client.get("/admin/api/v1/funnel.csv", headers=headers)
    assert answer.headers["content-type"].startswith("text/csv")
    rows = csv.DictReader(io.StringIO(answer.text))
    (row,) = [r for r in rows if r["campaign_id"] == CAMPAIGN_ID]
    assert (row["opened"], row["scanner_agent"]) == ("3", "2")
    one = await client.get("/admin/api/v1/funnel", params={"campaign_id": "nope"}, headers=headers)
    assert one.status_code == 404
    assert (await client.get("/admin/api/v1/funnel.csv")).status_code == 401


async def submit_correcting(
    client: Client, repository: Repository, links: LinkBuilder, customer_id: str, **changes: str
) -> None:
    """Submit the customer's prefilled form as shown, with `changes` typed over it."""
    page = await client.get(await form_link(repository, links, customer_id))
    shown = form_as_shown(page.text)
    answer = await client.post(f"/f/{FORM_ID}/submit", data=shown | changes, follow_redirects=False)
    assert answer.status_code == 303, answer.text


async def test_the_corrected_fields_chart_shows_the_forms_labels_and_room_for_its_text(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await submit_correcting(client, repository, links, "cust-1001", job_title="CTO")
    await submit_correcting(client, repository, links, "cust-1003", job_title="VD", company="X Ab")
    headers = await key_headers(repository, Scope.READ)
    page = (await client.get("/admin/dashboard", headers=basic(headers))).text

    corrected = page[page.index('aria-labelledby="corrected-1-title"') :]
    corrected = corrected[: corrected.index("</svg>")]
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', corrected)
    assert labels == ["Job title", "Company"]  # the form's English labels, not job_title
    assert re.search(r"<text [^>]*>2 · 100% of submissions</text>", corrected)
    assert re.search(r"<text [^>]*>1 · 50% of submissions</text>", corrected)
    # Every chart is as wide as its longest label and its longest bar's figures need.
    for svg in re.findall(r"<svg [^>]*>.*?</svg>", page, re.S):
        width = float(svg.split('viewBox="0 0 ', 1)[1].split(" ", 1)[0])
        for x, anchor, text in re.findall(
            r'<text x="([\d.]+)" y="[\d.]+"( text-anchor)?[^>]*>([^<]+)<', svg
        ):
            end = float(x) if anchor else float(x) + text_width(text)
            assert end - text_width(text) >= 0, text
            assert end <= width, (text, end, width)
