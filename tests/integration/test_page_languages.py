"""Pages speak the customer's language, else the browser's: texts come from the catalogs."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.links import LinkBuilder
from prefill.store import Repository
from tests.helpers import FORM_PATH, card_link, form_link

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize(
    ("customer_id", "lang", "texts"),
    [
        ("cust-1001", "fi", ["Ilmoittaudu", "Yhteyshenkilösi", "Etkö ole Matti?"]),
        ("cust-1003", "sv", ["Anmäl dig", "Din kontaktperson", "Är du inte Björn?"]),
        ("cust-1005", "en", ["Register", "Your contact person", "Not Kadri?"]),
    ],
)
async def test_form_page_in_the_customers_language(
    client: Client,
    repository: Repository,
    links: LinkBuilder,
    customer_id: str,
    lang: str,
    texts: list[str],
) -> None:
    # The browser asks for another language: the customer's own wins.
    response = await client.get(
        await form_link(repository, links, customer_id), headers={"Accept-Language": "de, en"}
    )
    assert f'<html lang="{lang}">' in response.text
    for text in texts:
        assert text in response.text


async def test_card_page_in_the_customers_language(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    response = await client.get(await card_link(repository, links, "cust-1003"))
    assert "Lägg till i kontakter" in response.text


@pytest.mark.parametrize(
    ("accept_language", "text"),
    [("fi-FI", "Sivua ei löytynyt"), ("sv", "Sidan hittades inte"), ("de", "Page not found")],
)
async def test_error_page_in_the_browsers_language(
    client: Client, accept_language: str, text: str
) -> None:
    response = await client.get("/no/such/page", headers={"Accept-Language": accept_language})
    assert response.status_code == 404
    assert text in response.text


async def test_generic_form_in_the_browsers_language(client: Client) -> None:
    response = await client.get(FORM_PATH, headers={"Accept-Language": "sv-FI"})
    assert '<html lang="sv">' in response.text
    assert "Anmäl dig" in response.text
    assert "Är du inte" not in response.text
