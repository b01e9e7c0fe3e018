"""HEAD on every link route (form page, card, vCard, unsubscribe), as mail scanners and link
previewers send it: 200, no body, the same headers for any token, nothing read or recorded."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.app import create_app
from prefill.links import LinkBuilder
from prefill.storage import EmbeddedRedis
from prefill.store import Repository
from tests.conftest import PUBLIC_URL, make_settings
from tests.helpers import FORM_PATH, card_link, claims_for, form_link, refusals_of, relative

Client = AsyncTestClient[Litestar]
VARYING = {"date", "x-request-id", "set-cookie"}
"""Per response; the form page's only cookie is its CSRF token (Litestar's, on every safe
method), which says nothing about the link."""


async def link_paths(repository: Repository, links: LinkBuilder) -> dict[str, str]:
    """Each link route with a valid token of Matti's."""
    card = await card_link(repository, links, "cust-1001")
    return {
        "form": await form_link(repository, links, "cust-1001"),
        "card": card,
        "vcard": card.replace("/card?", "/card/vcard?"),
        "unsubscribe": relative(links.unsubscribe_url(await claims_for(repository, "cust-1001"))),
    }


def without_token(path: str) -> str:
    return path.partition("?")[0]


async def test_head_on_every_link_route_answers_200_alike_and_records_nothing(
    client: Client, repository: Repository, links: LinkBuilder
) -> None:
    audit = len(await repository.audit_entries())
    consent = await repository.consent_history("cust-1001")
    refusals = await refusals_of(repository, "cust-1001")
    for route, valid in (await link_paths(repository, links)).items():
        answers = [
            await client.head(path)
            for path in (valid, f"{without_token(valid)}?t=forged", without_token(valid))
        ]
        for answer in answers:
            assert (answer.status_code, answer.content) == (200, b""), route
            assert answer.headers["cache-control"] == "no-store", route
            cookie = answer.headers.get("set-cookie", "prefill_csrf=")
            assert cookie.startswith("prefill_csrf="), route
        # Nothing in the headers tells a valid link from a forged one or none.
        shapes = [{k: v for k, v in a.headers.items() if k not in VARYING} for a in answers]
        assert shapes[0] == shapes[1] == shapes[2], route
    assert len(await repository.audit_entries()) == audit
    assert await repository.consent_history("cust-1001") == consent
    assert await refusals_of(repository, "cust-1001") == refusals


async def test_head_needs_no_redis(own_redis: EmbeddedRedis) -> None:
    """It reads nothing, so a Redis that is down changes nothing about it."""
    settings = make_settings(own_redis.url)
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        own_redis.stop()
        token = "?t=anything"
        for path in (FORM_PATH, "/card", "/card/vcard", "/u"):
            answer = await client.head(path + token)
            assert (answer.status_code, answer.content) == (200, b""), path
