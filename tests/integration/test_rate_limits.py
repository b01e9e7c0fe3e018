"""Rate limits in the real Redis, through real sockets: token guessing from one address, one link
hammered, admin key guessing; shared by instances, believed proxies only, fail closed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from prefill.apikeys import Scope
from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.models import ConsentSource
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis
from prefill.store import Repository
from prefill.store.client import connect
from tests.conftest import EXAMPLES, PSEUDONYMS, PUBLIC_URL, make_settings, serving
from tests.helpers import (
    API_PATH,
    FORM_PATH,
    claims_for,
    form_link,
    key_headers,
    refusals_today,
    relative,
    token_of,
)
from tests.topology import all_keys, sync_client

FORGED = "WyJjdXN0LTEwMDEiLCJzcHJpbmctc3VtbWl0LTIwMjctaW52aXRlIiwwXQ.axAvnw.forgedsignature"
TOO_MANY = {"status_code": 429, "detail": "Too many requests; try again later."}


def from_address(base_url: str, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any 127.x.y.z is this machine)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10)


def limited_count(kind: str) -> float:
    return REGISTRY.get_sample_value("prefill_rate_limited_total", {"limit": kind}) or 0.0


def limiting_settings(redis_url: str, **overrides: object) -> Settings:
    """The limits' defaults unless overridden; a Redis timeout that hundreds of requests on a
    loaded machine do not meet, since a 503 there would say nothing about the limits."""
    return make_settings(redis_url, **{"redis_timeout_seconds": 5.0, **overrides})


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return limiting_settings(redis_url)


@pytest.fixture
def live(settings: Settings, examples: None) -> Iterator[str]:
    with serving(settings) as url:
        yield url


async def test_token_guessing_from_one_address_is_limited_and_others_pass(
    live: str, repository: Repository, links: LinkBuilder, settings: Settings
) -> None:
    """The defaults: 600 forged tokens from one address, while a customer elsewhere opens their
    link. Only unsigned refusals are counted, and a limited one is not even counted as one."""
    assert settings.refused_links_per_address < 600  # The defaults are what is tested here.
    valid = await form_link(repository, links, "cust-1002")
    before = limited_count("refused_links")
    async with from_address(live, "127.0.0.2") as guesser, from_address(live, "127.0.0.3") as other:
        statuses = []
        for n in range(600):
            answer = await guesser.get(FORM_PATH, params={"t": f"{FORGED}{n}"})
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                last_limited = answer
        assert not [s for s in statuses if s >= 500]
        allowed = settings.refused_links_per_address
        assert statuses[:allowed] == [200] * allowed
        assert set(statuses[allowed:]) == {429}
        assert 0 < int(last_limited.headers["retry-after"]) <= settings.rate_limit_window_seconds
        assert "Matti" not in last_limited.text
        widget = await guesser.get(API_PATH, params={"t": FORGED})
        assert (widget.status_code, widget.json()) == (429, TOO_MANY)
        assert "retry-after" in widget.headers
        # Another address, with a valid link, and with no link at all: served as ever.
        page = await other.get(valid)
        assert page.status_code == 200
        assert "Päivi" in page.text
        assert (await other.get(FORM_PATH)).status_code == 200
        # A page without a token is nobody's guess, even from the limited address.
        assert (await guesser.get(FORM_PATH)).status_code == 200
    counts = await refusals_today(repository)
    guesses = sum(n for cause, n in counts.items() if not cause.endswith(":missing"))
    assert guesses == allowed  # A limited request wrote no refusal count.
    assert limited_count("refused_links") - before == 600 - allowed + 1


async def test_one_link_hammered_is_limited_and_other_links_pass(
    live: str, repository: Repository, links: LinkBuilder, settings: Settings
) -> None:
    assert settings.requests_per_link < 300
    hammered = await form_link(repository, links, "cust-1001")
    other = await form_link(repository, links, "cust-1002")
    disclosures = len(await repository.audit_entries())
    async with from_address(live, "127.0.0.4") as client:
        statuses = [(await client.get(hammered)).status_code for _ in range(300)]
        assert not [s for s in statuses if s >= 500]
        allowed = settings.requests_per_link
        assert statuses[:allowed] == [200] * allowed
        assert set(statuses[allowed:]) == {429}
        assert len(await repository.audit_entries()) == disclosures + allowed
        # The same link through the widget: the same count, the same generic 429.
        widget = await client.get(API_PATH, params={"t": token_of(hammered)})
        assert (widget.status_code, widget.json()) == (429, TOO_MANY)
        limited_page = await client.get(hammered)
        assert "Matti" not in limited_page.text
        # Another customer's link, from the same address: prefilled.
        page = await client.get(other)
        assert page.status_code == 200
        assert "Päivi" in page.text
    assert len(await repository.audit_entries()) == disclosures + allowed + 1


async def test_limited_answers_look_alike_whatever_the_limit(
    live: str, repository: Repository, links: LinkBuilder, settings: Settings, redis_url: str
) -> None:
    """No oracle: a guesser's 429 and a hammered link's 429 are the same page."""
    strict = limiting_settings(redis_url, requests_per_link=1, refused_links_per_address=1)
    link = await form_link(repository, links, "cust-1001")
    with serving(strict) as url:
        async with from_address(url, "127.0.0.5") as client:
            for _ in range(2):
                guessed = await client.get(FORM_PATH, params={"t": FORGED})
                hammered = await client.get(link)
    assert guessed.status_code == hammered.status_code == 429
    assert guessed.content == hammered.content
    assert guessed.headers["cache-control"] == "no-store"


async def test_admin_key_guessing_is_limited_per_address(
    live: str, repository: Repository, settings: Settings
) -> None:
    headers = await key_headers(repository, Scope.READ)
    wrong = {"Authorization": "Bearer pfk_000000000000_" + "x" * 43}
    path = "/admin/api/v1/forms"
    async with from_address(live, "127.0.0.6") as guesser, from_address(live, "127.0.0.7") as other:
        statuses = [
            (await guesser.get(path, headers=wrong)).status_code
            for _ in range(settings.admin_failures_per_address + 5)
        ]
        allowed = settings.admin_failures_per_address
        assert statuses[:allowed] == [401] * allowed
        assert set(statuses[allowed:]) == {429}
        # Now even the right key says nothing from there; elsewhere it works.
        limited = await guesser.get(path, headers=headers)
        assert (limited.status_code, limited.json()) == (429, TOO_MANY)
        assert "retry-after" in limited.headers
        assert (await other.get(path, headers=headers)).status_code == 200
        # No key at all is no guess: still the 401 that asks for one.
        assert (await other.get(path)).status_code == 401


async def test_two_instances_share_the_count(
    redis_url: str, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    settings = limiting_settings(redis_url, requests_per_link=10)
    link = await form_link(repository, links, "cust-1001")
    async with (
        AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as first,
        AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as second,
    ):
        statuses = []
        for _ in range(8):
            statuses.append((await first.get(link)).status_code)
            statuses.append((await second.get(link)).status_code)
    assert statuses == [200] * 10 + [429] * 6


async def test_concurrent_requests_are_counted_exactly(
    redis_url: str, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    """The count and its window are one atomic step: 40 requests at once, 25 let through."""
    settings = limiting_settings(redis_url, requests_per_link=25)
    link = await form_link(repository, links, "cust-1001")
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        answers = await asyncio.gather(*(client.get(link) for _ in range(40)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 25 + [429] * 15


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    redis_url: str, examples: None
) -> None:
    settings = limiting_settings(
        redis_url, refused_links_per_address=3, trusted_proxies=["127.0.0.8/32", "10.9.0.0/16"]
    )
    forged = {"t": FORGED}
    with serving(settings) as url:
        async with (
            from_address(url, "127.0.0.8") as proxy,
            from_address(url, "127.0.0.9") as direct,
        ):

            async def via_proxy(chain: str) -> int:
                answer = await proxy.get(
                    FORM_PATH, params=forged, headers={"X-Forwarded-For": chain}
                )
                return answer.status_code

            # The right-most address that is not a proxy is the client, whatever it wrote left
            # of that; a chain of proxies (10.9.x.x) in between is skipped.
            assert [await via_proxy(f"{n}.1.1.1, 192.0.2.1, 10.9.0.5") for n in range(5)] == [
                200, 200, 200, 429, 429
            ]  # fmt: skip
            assert await via_proxy("192.0.2.2") == 200  # another client behind the proxy
            # A client that is not a trusted proxy cannot choose its address by header.
            chains = [f"198.51.100.{n}" for n in range(5)]
            statuses = [
                (
                    await direct.get(FORM_PATH, params=forged, headers={"X-Forwarded-For": c})
                ).status_code
                for c in chains
            ]
            assert statuses == [200, 200, 200, 429, 429]


async def test_people_behind_one_address_and_a_scanner_are_not_limited(
    redis_url: str, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    """A corporate NAT: every customer opens their own link again and again from one address,
    a customer without consent (a refused, validly signed link) among them; a mail scanner
    fetches every link once. None of it is guessing, and no link is hammered."""
    settings = limiting_settings(redis_url, refused_links_per_address=3, requests_per_link=20)
    customers = [f"cust-{n}" for n in range(1001, 1008)]
    urls = [await form_link(repository, links, customer) for customer in customers]
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        scanned = [(await client.head(url)).status_code for url in urls]
        scanned += [
            (await client.get(url, headers={"User-Agent": "Barracuda Sentinel"})).status_code
            for url in urls
        ]
        opened = [(await client.get(url)).status_code for _ in range(15) for url in urls]
    assert set(scanned) == set(opened) == {200}
    assert len(opened) > 10 * settings.refused_links_per_address


async def test_the_limits_can_be_turned_off_for_load_tests(
    redis_url: str, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    settings = limiting_settings(
        redis_url, rate_limits=False, refused_links_per_address=1, requests_per_link=1
    )
    url = await form_link(repository, links, "cust-1001")
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        statuses = {(await client.get(url)).status_code for _ in range(5)}
        statuses |= {
            (await client.get(FORM_PATH, params={"t": f"{FORGED}{n}"})).status_code
            for n in range(5)
        }
    assert statuses == {200}


@pytest.mark.single_redis(reason="reads its own server's append-only files")
async def test_the_counters_stay_out_of_the_append_only_file(
    own_redis: EmbeddedRedis, links: LinkBuilder
) -> None:
    """A write to the append-only file costs an fsync: the counters, which a restart may
    forget, are not written there, while the refusal counts (audit) still are."""
    settings = limiting_settings(own_redis.url)
    seed = connect(own_redis.url, timeout_seconds=1, retries=0)
    repository = Repository(seed, PSEUDONYMS)
    await import_directory(repository, EXAMPLES)
    url = await form_link(repository, links, "cust-1001")
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        assert (await client.get(url)).status_code == 200
        assert (await client.get(FORM_PATH, params={"t": FORGED})).status_code == 200
    assert await seed.keys("pf:{rl:*") != []  # counted, in memory
    assert await seed.keys("pf:{b:*}:rate:*") != []
    await seed.aclose()
    aof = b"".join(path.read_bytes() for path in own_redis.data_dir.rglob("*.aof"))
    assert b"page:forged" in aof
    assert b"{rl:" not in aof
    assert b"}:rate:" not in aof


async def test_a_redis_that_lost_the_script_still_counts(
    client: AsyncTestClient[Litestar], repository: Repository, links: LinkBuilder, redis_url: str
) -> None:
    """After a restart Redis has no scripts: the pipelined call answers NOSCRIPT, and the script
    is loaded and run then, so the request is still counted and answered."""
    url = await form_link(repository, links, "cust-1001")
    with sync_client(redis_url) as admin:
        admin.script_flush()
        assert "Matti" in (await client.get(url)).text
        assert "Matti" not in (await client.get(FORM_PATH, params={"t": FORGED})).text
        assert len(all_keys(admin, "pf:{rl:*")) == 1
        assert len(all_keys(admin, "pf:{b:*}:rate:*")) == 1


async def test_an_ipv6_network_counts_as_one_address(redis_url: str, examples: None) -> None:
    """A guesser holds a whole /64: walking its addresses does not walk around the limit."""
    settings = limiting_settings(
        redis_url, refused_links_per_address=3, trusted_proxies=["127.0.0.8/32"]
    )
    forged = {"t": FORGED}
    with serving(settings) as url:
        async with from_address(url, "127.0.0.8") as proxy:

            async def guess_from(address: str) -> int:
                headers = {"X-Forwarded-For": address}
                return (await proxy.get(FORM_PATH, params=forged, headers=headers)).status_code

            statuses = [await guess_from(f"2001:db8:0:7::{n:x}") for n in range(1, 6)]
            assert statuses == [200, 200, 200, 429, 429]
            assert await guess_from("2001:db8:0:8::1") == 200  # the next /64 is someone else


async def test_consent_evidence_names_the_client_behind_a_trusted_proxy(
    redis_url: str, examples: None, repository: Repository, links: LinkBuilder
) -> None:
    settings = limiting_settings(redis_url, trusted_proxies=["127.0.0.8/32"])
    claims = await claims_for(repository, "cust-1001")
    path = relative(links.unsubscribe_url(claims))
    with serving(settings) as url:
        async with from_address(url, "127.0.0.8") as proxy:
            answer = await proxy.post(
                path,
                data={"List-Unsubscribe": "One-Click"},
                headers={"X-Forwarded-For": "198.51.100.77"},
            )
    assert answer.status_code == 200
    (event,) = [
        e
        for e in await repository.consent_history("cust-1001")
        if e.source == ConsentSource.UNSUBSCRIBE
    ]
    assert event.ip_prefix == "198.51.100.0/24"  # the client's, not the proxy's
