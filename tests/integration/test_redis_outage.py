"""Fail closed when Redis is down or frozen, recover without a restart, and keep what was
acknowledged across a crash. Each test runs its own redis-server so it can stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import redis as sync_redis
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from prefill.apikeys import Scope
from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.models import ConsentAction
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis, free_tcp_port
from prefill.store import Repository
from prefill.store.client import connect
from prefill.store.keys import BUCKETS, catalog_version_copy_key, customer_key
from prefill.tokens import LinkClaims, LinkSigner, TokenPurpose
from prefill.web.submit import THANKS_COOKIE
from tests.conftest import EXAMPLES, PSEUDONYMS, PUBLIC_URL, SECRET, make_settings
from tests.helpers import (
    API_PATH,
    CAMPAIGN_ID,
    FORM_PATH,
    form_link,
    key_headers,
    refusals_of,
    set_consent,
    token_of,
)


class Outage(NamedTuple):
    """An app and a repository on a Redis the test may stop, and Matti's form link."""

    client: AsyncTestClient[Litestar]
    repository: Repository
    url: str


PERSONAL = ("Matti", "Korhonen", "lampo.example", "Aino", "+358")


async def examples_and_link(repository: Repository, settings: Settings) -> str:
    """The examples loaded through `repository`; Matti's form link."""
    await import_directory(repository, EXAMPLES)
    links = LinkBuilder(LinkSigner(settings.secret_keys, settings.max_link_age_seconds), PUBLIC_URL)
    return await form_link(repository, links, "cust-1001")


@pytest.fixture
async def outage_client(
    own_redis: EmbeddedRedis,
) -> AsyncIterator[Outage]:
    settings = make_settings(own_redis.url)
    redis_client = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    repository = Repository(redis_client, PSEUDONYMS)
    url = await examples_and_link(repository, settings)
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        yield Outage(client, repository, url)
    await redis_client.aclose()


@pytest.fixture
def admin(own_redis: EmbeddedRedis) -> Iterator[sync_redis.Redis]:
    """A plain client to the test's server, for breaking it on purpose."""
    with sync_redis.Redis.from_url(own_redis.url) as client:
        yield client


async def until_answered(
    client: AsyncTestClient[Litestar], url: str, done: Callable[[Response], bool]
) -> Response:
    """GET `url` until `done` says the answer is right: the service recovers by itself."""
    deadline = time.monotonic() + 10
    while not done(response := await client.get(url)):
        assert time.monotonic() < deadline, f"no recovery within 10 s: {response.status_code}"
        await asyncio.sleep(0.1)
    return response


def assert_nothing_personal(text: str) -> None:
    for value in PERSONAL:
        assert value not in text


async def test_redis_stopped_then_back(
    outage_client: Outage,
    own_redis: EmbeddedRedis,
) -> None:
    client, _, url = outage_client
    assert "Matti" in (await client.get(url)).text

    own_redis.stop()
    page = await client.get(url)
    assert page.status_code == 503
    assert 'name="first_name"' in page.text  # still a usable, empty form
    assert page.headers["retry-after"] == "5"
    assert_nothing_personal(page.text)
    api = await client.get(API_PATH, params={"t": token_of(url)})
    assert api.status_code == 503
    assert api.json()["detail"] == "Service temporarily unavailable."
    assert api.headers["retry-after"] == "5"
    assert_nothing_personal(api.text)
    card = await client.get("/card", params={"t": "anything"})
    assert card.status_code == 503
    # Someone whose submit was stored just before still gets thanked, with nothing personal.
    thanks_token = LinkSigner([SECRET], 86_400).sign(
        TokenPurpose.THANKS, LinkClaims("cust-1001", CAMPAIGN_ID, 0)
    )
    client.cookies.set(THANKS_COOKIE, thanks_token, domain="testserver.local")
    thanks = await client.get(f"{FORM_PATH}/thanks?lang=fi")
    assert thanks.status_code == 200
    assert "Kiitos" in thanks.text
    assert_nothing_personal(thanks.text)
    calendar = await client.get(f"{FORM_PATH}/event.ics")
    assert calendar.status_code == 200
    assert "Aino" not in calendar.text
    client.cookies.clear()
    assert (await client.get("/health/ready")).status_code == 503
    assert (await client.get("/health/live")).status_code == 200
    # A load balancer's HEAD gets the same statuses, without a body.
    for path, status in (("/health/ready", 503), ("/health/live", 200)):
        checked = await client.head(path)
        assert (checked.status_code, checked.content) == (status, b"")

    own_redis.start()  # same port, same data directory
    page = await until_answered(client, url, lambda r: "Matti" in r.text)
    assert page.status_code == 200
    ready = await until_answered(client, "/health/ready", lambda r: r.status_code == 200)
    assert ready.status_code == 200
    assert (await client.head("/health/ready")).status_code == 200


async def test_frozen_redis_fails_closed_quickly(
    outage_client: Outage,
    own_redis: EmbeddedRedis,
) -> None:
    """A Redis that stops answering (SIGSTOP) is treated like one that is gone."""
    client, _, url = outage_client
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        page = await client.get(url)
        assert page.status_code == 503
        assert_nothing_personal(page.text)
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    await until_answered(client, url, lambda r: "Matti" in r.text)


async def test_a_service_started_while_redis_is_down_recovers(
    own_redis: EmbeddedRedis,
) -> None:
    own_redis.stop()
    settings = make_settings(own_redis.url)
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        down = await client.get(FORM_PATH)
        assert down.status_code == 503
        own_redis.start()
        redis_client = connect(own_redis.url, timeout_seconds=1, retries=0)
        await import_directory(Repository(redis_client, PSEUDONYMS), EXAMPLES)
        await redis_client.aclose()
        await until_answered(client, FORM_PATH, lambda r: r.status_code == 200)


async def test_an_acknowledged_consent_change_survives_sigkill(own_redis: EmbeddedRedis) -> None:
    # One retry: the pooled connection dies with the server and is replaced on the retry.
    redis_client = connect(own_redis.url, timeout_seconds=1, retries=1)
    repository = Repository(redis_client, PSEUDONYMS)
    await import_directory(repository, EXAMPLES)
    await set_consent(repository, "cust-1001", ConsentAction.WITHDRAWN)
    own_redis.kill()  # no shutdown, no final fsync: only what was already on disk survives
    own_redis.start()
    history = await repository.consent_history("cust-1001")
    assert history[-1].action is ConsentAction.WITHDRAWN
    state = await repository.current_consents(["cust-1001"])
    assert state["cust-1001"]["personalization"].action is ConsentAction.WITHDRAWN
    await redis_client.aclose()


async def test_a_withdrawal_answered_by_the_api_survives_a_sigkill_right_after(
    outage_client: Outage, own_redis: EmbeddedRedis
) -> None:
    client, repository, url = outage_client
    headers = await key_headers(repository, Scope.CONSENT)
    answer = await client.post(
        "/admin/api/v1/customers/cust-1001/consent",
        headers=headers,
        json={"purpose": "personalization", "action": "withdrawn"},
    )
    assert answer.status_code == 201
    own_redis.kill()  # at once: no shutdown, no final fsync
    own_redis.start()
    page = await until_answered(client, url, lambda r: r.status_code == 200)
    assert_nothing_personal(page.text)
    fresh = connect(own_redis.url, timeout_seconds=1, retries=0)
    history = await Repository(fresh, PSEUDONYMS).consent_history("cust-1001")
    await fresh.aclose()
    assert (history[-1].action, history[-1].source) == (ConsentAction.WITHDRAWN, "admin")


async def test_a_read_only_redis_fails_closed(
    outage_client: Outage, admin: sync_redis.Redis
) -> None:
    """A replica (after a failover gone wrong) still answers reads but refuses the audit write:
    nothing may be disclosed without its audit record, so the answer is 503, not a 500."""
    client, _, url = outage_client
    admin.replicaof("127.0.0.1", "1")
    try:
        page = await client.get(url)
        assert page.status_code == 503
        assert_nothing_personal(page.text)
        api = await client.get(API_PATH, params={"t": token_of(url)})
        assert api.status_code == 503
        assert (await client.get("/health/ready")).status_code == 503
    finally:
        admin.replicaof("NO", "ONE")
    assert "Matti" in (await client.get(url)).text


async def test_an_unreadable_customer_record_is_refused_like_any_other(
    outage_client: Outage, admin: sync_redis.Redis
) -> None:
    client, repository, url = outage_client
    generic = await client.get(FORM_PATH)
    admin.hset(customer_key("cust-1001"), mapping={"h.0": b"{not msgpack", "h.1": b"\xc1"})
    page = await client.get(url)
    assert (page.status_code, page.content) == (generic.status_code, generic.content)
    assert (await refusals_of(repository, "cust-1001"))["page:unreadable_record"] == 1


async def test_corrupt_shared_state_fails_closed_the_same_for_every_link(
    outage_client: Outage, admin: sync_redis.Redis
) -> None:
    client, _, valid = outage_client
    copies = [catalog_version_copy_key(bucket) for bucket in range(BUCKETS)]
    admin.mset(dict.fromkeys(copies, "v7"))  # every bucket's copy: every link's read
    pages = [
        await client.get(valid),
        await client.get(f"{FORM_PATH}?t=forged"),
        await client.get(FORM_PATH),
    ]
    api = await client.get(API_PATH, params={"t": token_of(valid)})
    admin.mset(dict.fromkeys(copies, "1"))
    assert {p.status_code for p in pages} == {503}
    assert len({p.content for p in pages}) == 1
    assert api.status_code == 503


async def test_a_wrong_key_type_for_one_customer_is_a_refusal(
    outage_client: Outage, admin: sync_redis.Redis
) -> None:
    client, _, url = outage_client
    generic = await client.get(FORM_PATH)
    admin.delete(customer_key("cust-1001"))
    admin.set(customer_key("cust-1001"), "not a hash")
    page = await client.get(url)
    assert (page.status_code, page.content) == (generic.status_code, generic.content)


async def test_a_redis_that_may_lose_acknowledged_writes_is_reported(
    own_redis: EmbeddedRedis, admin: sync_redis.Redis
) -> None:
    client = connect(own_redis.url, timeout_seconds=1, retries=0)
    repository = Repository(client, PSEUDONYMS)
    assert await repository.durability_problem() is None  # the embedded server fsyncs always
    admin.config_set("appendfsync", "everysec")
    try:
        assert await repository.durability_problem() == "appendonly='yes' appendfsync='everysec'"
    finally:
        admin.config_set("appendfsync", "always")
        await client.aclose()


FROZEN_ANSWER_MARGIN_SECONDS = 0.25
"""Above PREFILL_REDIS_TIMEOUT_SECONDS: scheduling on a loaded machine, never a second try."""


@pytest.mark.parametrize("transport", ["unix socket", "tcp"])
async def test_a_frozen_redis_is_answered_within_the_timeout(
    tmp_path: Path, transport: str
) -> None:
    """The README's bound: one try per request, whether the connection is pooled or new (a
    new one to a frozen server connects, then times out in its handshake)."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_tcp_port() if transport == "tcp" else None)
    server.start()
    try:
        settings = Settings.from_env(
            {"PREFILL_REDIS_URL": server.url, "PREFILL_SECRET_KEYS": SECRET}
        )  # The service's own defaults: the timeout and the retries are what is promised.
        seed = connect(server.url, timeout_seconds=1, retries=0)
        url = await examples_and_link(Repository(seed, PSEUDONYMS), settings)
        await seed.aclose()
        bound = settings.redis_timeout_seconds + FROZEN_ANSWER_MARGIN_SECONDS
        async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
            assert (await client.get(url)).status_code == 200
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                paths = [url, f"{FORM_PATH}?t=forged", f"{API_PATH}?t={token_of(url)}"]
                for path in paths * 2:  # The second round finds no pooled connection left.
                    started = time.monotonic()
                    answer = await client.get(path)
                    elapsed = time.monotonic() - started
                    assert answer.status_code == 503
                    assert elapsed < bound, f"{path}: {elapsed:.3f} s"
            finally:
                os.kill(server.pid, signal.SIGCONT)
            await until_answered(client, url, lambda r: "Matti" in r.text)
    finally:
        server.stop()


async def test_the_rate_limits_fail_closed_with_the_503(
    outage_client: Outage, own_redis: EmbeddedRedis
) -> None:
    """Every limit is counted in Redis: down, each answers the 503, never a 500."""
    client, _, url = outage_client
    assert (await client.get(url)).status_code == 200
    own_redis.stop()
    forged = {"t": "WyJjdXN0LTEwMDEiLCJ4IiwwXQ.axAvnw.forged"}
    wrong_key = {"Authorization": "Bearer pfk_000000000000_" + "x" * 43}
    answers = [
        await client.get(url),  # counted per link
        await client.get(FORM_PATH, params=forged),  # counted per address
        await client.get(API_PATH, params=forged),
        await client.get("/card", params=forged),
        await client.get("/admin/api/v1/forms", headers=wrong_key),  # admin failures
    ]
    assert [a.status_code for a in answers] == [503] * 5
    assert all(a.headers["retry-after"] == "5" for a in answers)


@pytest.mark.parametrize("transport", ["unix socket", "tcp"])
async def test_a_restarted_redis_is_used_again_from_the_first_request(
    tmp_path: Path, transport: str
) -> None:
    """The pooled connections died with the server: the first request after the restart finds
    that at once and tries again on a new connection (a quick retry), no 503."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_tcp_port() if transport == "tcp" else None)
    server.start()
    try:
        settings = Settings.from_env(
            {"PREFILL_REDIS_URL": server.url, "PREFILL_SECRET_KEYS": SECRET}
        )
        seed = connect(server.url, timeout_seconds=1, retries=0)
        url = await examples_and_link(Repository(seed, PSEUDONYMS), settings)
        await seed.aclose()
        async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
            pages = await asyncio.gather(*(client.get(url) for _ in range(4)))  # a few in the pool
            assert {page.status_code for page in pages} == {200}
            server.stop()
            server.start()
            after = [await client.get(url) for _ in range(4)]
            assert [page.status_code for page in after] == [200] * 4
            assert "Matti" in after[0].text
    finally:
        server.stop()


async def test_a_frozen_redis_is_logged_as_a_timeout_by_the_api_and_the_form_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A new connection to a frozen Redis over its unix socket times out in its handshake,
    which redis-py reports as a ConnectionError: the log names the timeout, the same for the
    form page's own 503 (its empty form) as for every other 503."""
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        settings = make_settings(server.url)
        seed = connect(server.url, timeout_seconds=1, retries=0)
        url = await examples_and_link(Repository(seed, PSEUDONYMS), settings)
        await seed.aclose()
        async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
            assert (await client.get(url)).status_code == 200
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                for path in (url, f"{API_PATH}?t={token_of(url)}") * 2:  # later: new connections
                    caplog.clear()
                    with caplog.at_level("WARNING", logger="prefill.errors"):
                        answer = await client.get(path)
                    assert answer.status_code == 503
                    logged = [r.getMessage() for r in caplog.records if r.name == "prefill.errors"]
                    assert logged == ["redis unavailable: TimeoutError"], path
            finally:
                os.kill(server.pid, signal.SIGCONT)
    finally:
        server.stop()
