"""The widget JSON API, the contact card page, its JSON and vCard, and health endpoints."""

from __future__ import annotations

import pytest
import vobject
from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.links import LinkBuilder
from prefill.models import ConsentAction
from prefill.store import Repository
from tests.helpers import (
    API_PATH,
    card_link,
    claims_for,
    form_link,
    refusals_of,
    relative,
    set_consent,
    token_of,
)

Client = AsyncTestClient[Litestar]
ALLOWED_ORIGIN = "http://localhost:8001"


async def test_api_returns_the_prefill_values_and_contact(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    token = token_of(await form_link(repository, links, "cust-1004"))
    response = await client.get(API_PATH, params={"t": token})
    assert response.status_code == 200
    body = response.json()
    assert body["prefilled"] is True
    assert body["locale"] == "sv"
    assert body["values"]["first_name"] == "Linnéa"
    assert body["values"]["email"] == "l•••@borgamarin.example"
    assert "questions" not in body["values"]
    assert body["contact"]["name"] == "Johan Lindqvist"
    assert body["contact"]["title"] == "Kundansvarig"
    assert body["contact"]["photo_url"].endswith("/contacts/johan-lindqvist/photo")
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("token", ["", "forged", "a.b.c"])
async def test_api_refusals_have_the_same_status_and_shape(
    client: Client, repository: Repository, links: LinkBuilder, token: str
) -> None:
    no_consent = token_of(await form_link(repository, links, "cust-1007"))
    for candidate in (token, no_consent):
        response = await client.get(API_PATH, params={"t": candidate})
        assert response.status_code == 200
        assert response.json() == {
            "form_id": "spring-summit-2027",
            "locale": "en",
            "prefilled": False,
            "values": {},
            "contact": None,
        }


async def test_cors_only_for_the_forms_allowed_origins(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    token = token_of(await form_link(repository, links, "cust-1001"))
    allowed = await client.get(API_PATH, params={"t": token}, headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert allowed.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed.json()["prefilled"] is True

    other = await client.get(
        API_PATH, params={"t": token}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    assert other.json()["prefilled"] is False
    assert "Matti" not in other.text
    assert (await refusals_of(repository, "cust-1001"))["widget:origin_not_allowed"] == 1


async def test_api_for_an_unknown_form_is_a_json_404(client: Client) -> None:
    response = await client.get("/api/v1/forms/nope/prefill", params={"t": "x"})
    assert response.status_code == 404
    assert response.json()["detail"] == "No form with this id."


async def test_card_page_shows_the_contact_person(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    response = await client.get(await card_link(repository, links, "cust-1003"))
    assert response.status_code == 200
    page = response.text
    assert '<html lang="sv">' in page
    assert "Johan Lindqvist" in page
    assert 'href="tel:+358501234568"' in page
    assert 'href="mailto:johan.lindqvist@kaamos.example"' in page
    assert "/card/vcard?t=" in page
    assert response.headers["cache-control"] == "no-store"


async def test_card_refusals_show_the_same_generic_card(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    form_token = token_of(await form_link(repository, links, "cust-1001"))
    no_consent = await card_link(repository, links, "cust-1007")
    pages = [
        await client.get("/card", params={"t": "forged"}),
        await client.get("/card", params={"t": form_token}),  # a form token is not a card token
        await client.get(no_consent),
        await client.get("/card"),
    ]
    assert {p.status_code for p in pages} == {200}
    assert len({p.content for p in pages}) == 1
    assert "Aino" not in pages[0].text


async def test_vcard_loads_in_a_standard_parser(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    card_url = await card_link(repository, links, "cust-1001")
    response = await client.get(card_url.replace("/card?", "/card/vcard?"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/vcard; charset=utf-8"
    assert 'filename="aino-virtanen.vcf"' in response.headers["content-disposition"]
    card = vobject.readOne(response.text)
    assert card.fn.value == "Aino Virtanen"
    assert card.org.value == ["Kaamos Instruments Oy"]
    assert card.title.value == "Asiakkuuspäällikkö"
    assert card.photo.value.startswith(b"\xff\xd8")


async def test_vcard_refusals_are_one_404(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    await set_consent(repository, "cust-1001", ConsentAction.WITHDRAWN)
    withdrawn = (await card_link(repository, links, "cust-1001")).replace("/card?", "/card/vcard?")
    responses = [await client.get(withdrawn), await client.get("/card/vcard?t=forged")]
    assert {r.status_code for r in responses} == {404}
    assert responses[0].content == responses[1].content


async def test_card_json(client: Client, repository: Repository, links: LinkBuilder) -> None:
    token = token_of(await card_link(repository, links, "cust-1006"))
    body = (await client.get("/api/v1/card", params={"t": token})).json()
    assert body["contact"]["name"] == "Kaamos Customer Team"
    assert body["contact"]["photo_url"] is None
    assert (await client.get("/api/v1/card", params={"t": "x"})).json() == {
        "locale": "en",
        "contact": None,
    }


async def test_contact_photos_are_served_and_cacheable(client: Client) -> None:
    response = await client.get("/contacts/emily-carter/photo")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"\xff\xd8")
    assert "public" in response.headers["cache-control"]
    assert (await client.get("/contacts/customer-team/photo")).status_code == 404
    assert (await client.get("/contacts/nobody/photo")).status_code == 404
    # Someone who has left the company is no longer shown, photo included.
    assert (await client.get("/contacts/pekka-nieminen/photo")).status_code == 404


@pytest.mark.parametrize("path", ["/static/a%00", "/static/%00/prefill.css", "/static/a%00.css"])
async def test_a_nul_byte_in_a_static_path_is_not_found(client: Client, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_static_assets_are_cacheable(client: Client) -> None:
    response = await client.get("/static/prefill.css")
    assert response.status_code == 200
    assert "max-age=86400" in response.headers["cache-control"]
    assert "no-store" not in response.headers["cache-control"]


async def test_health(client: Client) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    assert (await client.get("/health/ready")).json() == {"status": "ok"}


async def test_a_team_contact_is_a_company_vcard(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    card_url = await card_link(repository, links, "cust-1006")
    text = (await client.get(card_url.replace("/card?", "/card/vcard?"))).text
    card = vobject.readOne(text)
    assert card.fn.value == "Kaamos Customer Team"
    assert card.n.value.family == card.n.value.given == ""
    assert card.contents["x-abshowas"][0].value == "COMPANY"


async def test_head_requests_reveal_and_record_nothing(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    before = len(await repository.audit_entries())
    url = await form_link(repository, links, "cust-1001")
    for path in (url, await card_link(repository, links, "cust-1001")):
        response = await client.head(path)
        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["cache-control"] == "no-store"
    assert len(await repository.audit_entries()) == before


async def test_home_page(client: Client) -> None:
    response = await client.get("/", headers={"Accept-Language": "sv"})
    assert response.status_code == 200
    assert "Personliga länkar" in response.text


async def test_openapi_document_without_third_party_viewers(client: Client) -> None:
    document = await client.get("/schema/openapi.json")
    assert document.status_code == 200
    assert "/api/v1/forms/{form_id}/prefill" in document.json()["paths"]
    for viewer in ("/schema/swagger", "/schema/redoc", "/schema/elements"):
        assert (await client.get(viewer)).status_code == 404


@pytest.mark.parametrize(
    ("customer_id", "tel", "shown"),
    [
        ("cust-1001", "+358401234567", "040 1234567"),  # fi: a Finnish number, national
        ("cust-1003", "+358501234568", "050 1234568"),  # sv: Finland-Swedes, national
        ("cust-1005", "+358407654321", "+358 40 7654321"),  # en: international
    ],
)
async def test_phones_are_shown_as_the_customer_dials_them_and_linked_as_stored(
    client: Client,
    repository: Repository,
    links: LinkBuilder,
    customer_id: str,
    tel: str,
    shown: str,
) -> None:
    link = f'<a href="tel:{tel}">{shown}</a>'
    assert link in (await client.get(await card_link(repository, links, customer_id))).text
    assert link in (await client.get(await form_link(repository, links, customer_id))).text
    vcard_url = links.vcard_url(await claims_for(repository, customer_id))
    vcard = await client.get(relative(vcard_url))
    assert f"TEL;TYPE=WORK,VOICE:{tel}\r\n" in vcard.text  # an address book wants E.164
