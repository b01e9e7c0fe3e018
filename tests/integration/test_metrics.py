"""Prometheus metrics over HTTP: where /metrics answers, what it counts, and that a scrape holds
nothing personal. The registry is the process's, so tests compare before and after."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from prefill.apikeys import Scope
from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.storage import EmbeddedRedis
from prefill.store import Repository
from prefill.store.client import connect
from prefill.tokens import LinkSigner
from tests.conftest import EXAMPLES, PSEUDONYMS, PUBLIC_URL, make_settings
from tests.helpers import (
    API_PATH,
    FORM_ID,
    FORM_PATH,
    card_link,
    claims_for,
    form_link,
    key_headers,
    relative,
    token_of,
)

Client = AsyncTestClient[Litestar]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ADMIN = "/admin/api/v1"
ALLOWED_ORIGIN = "http://127.0.0.1:8001"  # examples/forms.json


@pytest.fixture
async def scraper(repository: Repository) -> dict[str, str]:
    """What Prometheus sends: a key with the metrics scope."""
    return await key_headers(repository, Scope.METRICS)


async def scrape(client: Client, scraper: dict[str, str], base: str = "") -> str:
    answer = await client.get(f"{base}/metrics", headers=scraper)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(of: Samples, name: str, **labels: str) -> float:
    return of.get((name, frozenset(labels.items())), 0.0)


def example_values() -> set[str]:
    """Every example customer's id and personal value."""
    with (EXAMPLES / "customers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    fields = ("id", "email", "first_name", "last_name", "phone", "company")
    return {row[f] for row in rows for f in fields if row[f]}


async def test_metrics_need_a_key_with_the_metrics_scope(
    client: Client, repository: Repository
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    reader = await key_headers(repository, Scope.READ)
    assert (await client.get("/metrics", headers=reader)).status_code == 403


async def test_metrics_are_served_on_the_main_port_without_an_admin_port(
    client: Client, scraper: dict[str, str]
) -> None:
    await client.get("/health/live")  # Request metrics exist from the first measured request.
    text = await scrape(client, scraper)
    assert "prefill_requests_total" in text
    assert "prefill_request_duration_seconds_bucket" in text
    assert "prefill_link_resolutions_total" in text


async def test_with_an_admin_port_only_the_admin_port_serves_metrics(
    redis_url: str, examples: None, scraper: dict[str, str]
) -> None:
    app = create_app(make_settings(redis_url, admin_port=9444))
    async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as client:
        assert (await client.get("/metrics")).status_code == 404
        await client.get("/health/live")
        assert "prefill_requests_total" in await scrape(
            client, scraper, "http://testserver.local:9444"
        )


async def test_metrics_are_not_in_the_api_document(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert f"{ADMIN}/customers/{{customer_id}}" in paths
    assert not [path for path in paths if "metrics" in path]


async def test_request_latency_is_labelled_by_route_template_not_by_path(
    client: Client, repository: Repository, scraper: dict[str, str]
) -> None:
    headers = await key_headers(repository, Scope.READ)
    template = f"{ADMIN}/customers/{{customer_id}}"
    labels = {"method": "GET", "path": template, "status_code": "200", "app_name": "prefill"}
    before = samples(await scrape(client, scraper))
    assert (await client.get(f"{ADMIN}/customers/cust-1002", headers=headers)).status_code == 200
    assert (await client.get(f"{ADMIN}/customers/cust-1003", headers=headers)).status_code == 200
    after = samples(await scrape(client, scraper))
    counted = value(after, "prefill_requests_total", **labels)
    assert counted - value(before, "prefill_requests_total", **labels) == 2
    timed = value(after, "prefill_request_duration_seconds_count", **labels)
    assert timed - value(before, "prefill_request_duration_seconds_count", **labels) == 2
    assert not [key for key in after if dict(key[1]).get("path") == "/metrics"]


async def test_a_scrape_after_a_run_over_the_examples_holds_nothing_personal(
    client: Client, repository: Repository, links: LinkBuilder, scraper: dict[str, str]
) -> None:
    headers = await key_headers(repository, Scope.READ, Scope.CONSENT)
    tokens: set[str] = set()
    for customer_id in ("cust-1001", "cust-1002", "cust-1003", "cust-1005", "cust-1007"):
        url = await form_link(repository, links, customer_id)
        card = await card_link(repository, links, customer_id)
        tokens |= {token_of(url), token_of(card)}
        await client.get(url)
        await client.get(API_PATH, params={"t": token_of(url)}, headers={"Origin": ALLOWED_ORIGIN})
        await client.get(
            API_PATH, params={"t": token_of(url)}, headers={"Origin": "https://x.test"}
        )
        await client.get(card)
        await client.get(card.replace("/card?", "/card/vcard?"))
        await client.get(f"{ADMIN}/customers/{customer_id}", headers=headers)
        await client.get(f"{ADMIN}/customers/{customer_id}/export", headers=headers)
        await client.get(f"{ADMIN}/customers/{customer_id}/consent", headers=headers)
    await client.get(f"{ADMIN}/customers/cust-9999", headers=headers)  # 404
    await client.get(f"{FORM_PATH}?t=forged.token.value")
    text = await scrape(client, scraper)
    for secret in example_values() | tokens | {headers["Authorization"].removeprefix("Bearer ")}:
        assert secret not in text, f"{secret!r} is in the scrape"


async def test_several_apps_in_one_process_share_the_metrics(
    redis_url: str, scraper: dict[str, str]
) -> None:
    """Tests and benchmarks build many apps; the metrics are registered once, not per app."""
    labels = {"method": "GET", "path": "/health/live", "status_code": "200", "app_name": "prefill"}
    counts = []
    for _ in range(3):
        async with AsyncTestClient(app=create_app(make_settings(redis_url))) as client:
            assert (await client.get("/health/live")).status_code == 200
            counts.append(
                value(samples(await scrape(client, scraper)), "prefill_requests_total", **labels)
            )
    assert counts[1] - counts[0] == counts[2] - counts[1] == 1


# -- link resolutions by outcome --------------------------------------------------------------


Scraping = tuple[Client, Repository, dict[str, str]]


@pytest.fixture
async def own_client(own_redis: EmbeddedRedis) -> AsyncIterator[Scraping]:
    """An app on a Redis the test may stop, its repository, and a key to scrape with."""
    redis_client = connect(own_redis.url, timeout_seconds=1, retries=0)
    repository = Repository(redis_client, PSEUDONYMS)
    await import_directory(repository, EXAMPLES)
    scraper = await key_headers(repository, Scope.METRICS)
    async with AsyncTestClient(app=create_app(make_settings(own_redis.url))) as client:
        yield client, repository, scraper
    await redis_client.aclose()


async def test_every_resolution_is_counted_by_channel_and_outcome(
    own_client: Scraping, own_redis: EmbeddedRedis
) -> None:
    client, repository, scraper = own_client
    settings = make_settings(own_redis.url)
    links = LinkBuilder(
        LinkSigner(settings.secret_keys, settings.max_link_age_seconds), settings.public_url
    )
    other_key = LinkBuilder(LinkSigner(["another-secret-key-" + "x" * 32], 3600), PUBLIC_URL)
    forged = relative(other_key.form_url(await claims_for(repository, "cust-1001"), FORM_ID))
    valid = await form_link(repository, links, "cust-1001")
    no_consent = await form_link(repository, links, "cust-1007")  # no personalization consent
    card = await card_link(repository, links, "cust-1001")
    before = samples(await scrape(client, scraper))

    assert "Matti" in (await client.get(valid)).text
    await client.get(forged)
    await client.get(no_consent)
    await client.get(API_PATH, params={"t": token_of(valid)}, headers={"Origin": ALLOWED_ORIGIN})
    await client.get(card)
    await client.get(card.replace("/card?", "/card/vcard?"))
    own_redis.stop()
    assert (await client.get(valid)).status_code == 503
    own_redis.start()  # The scrape needs no Redis, but the fixture's teardown does.
    after = samples(await scrape(client, scraper))

    def counted(channel: str, outcome: str) -> float:
        labels = {"channel": channel, "outcome": outcome}
        name = "prefill_link_resolutions_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert counted("page", "valid") == 1
    assert counted("page", "forged") == 1
    assert counted("page", "consent_missing") == 1
    assert counted("page", "redis_unavailable") == 1
    assert counted("widget", "valid") == 1
    assert counted("card", "valid") == 1
    assert counted("vcard", "valid") == 1
