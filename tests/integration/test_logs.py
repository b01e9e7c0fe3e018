"""No personal data and no token in any log line, across a run that touches every surface."""

from __future__ import annotations

import csv
import logging

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.links import LinkBuilder
from prefill.repository import Repository
from tests.conftest import EXAMPLES
from tests.helpers import API_PATH, FORM_PATH, card_link, form_link, token_of


def personal_values() -> set[str]:
    with (EXAMPLES / "customers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fields = ("email", "first_name", "last_name", "phone", "company")
    return {row[f] for row in rows for f in fields if row[f]}


async def test_logs_hold_no_personal_data_or_tokens(
    client: AsyncTestClient[Litestar],
    repository: Repository,
    links: LinkBuilder,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = set()
    for customer_id in ("cust-1001", "cust-1003", "cust-1005", "cust-1007"):
        url = await form_link(repository, links, customer_id)
        card = await card_link(repository, links, customer_id)
        secrets |= {token_of(url), token_of(card)}
        await client.get(url)
        await client.get(
            API_PATH, params={"t": token_of(url)}, headers={"Origin": "https://not-allowed.example"}
        )
        await client.get(card)
        await client.get(card.replace("/card?", "/card/vcard?"))
        await client.post(f"{FORM_PATH}/not-you", data={"t": token_of(url)})
    await client.get(f"{FORM_PATH}?t=forged.token.value")
    await client.get("/f/unknown-form?t=whatever")
    captured = capfd.readouterr()
    # httpx is the test's own client, which logs the URLs it requests; the service does not.
    service_records = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    printed = [line for line in (captured.out + captured.err).splitlines() if " httpx " not in line]
    logged = "\n".join(service_records + printed)
    assert "HTTP Request" in logged  # the logs did capture the requests
    for value in personal_values() | secrets:
        assert value not in logged, f"{value!r} leaked into the logs"
