"""The Redis a test runs against: one server, or a Redis Cluster (three primaries, three replicas).

Every integration test that asks for Redis (through `topology`, `redis_url`, `settings`, `env`,
`redis_client`, ...) runs once on each (`[redis]`, `[cluster]`); `pytest --topology redis|cluster`
picks one. A test that needs one server of its own to stop, freeze or read the files of carries
`@pytest.mark.single_redis(reason=...)` and runs once, on the single server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis
from redis.asyncio import Redis
from redis.cluster import RedisCluster

from prefill.store.client import connect

TOPOLOGIES = ("redis", "cluster")

_CLUSTER_URLS: set[str] = set()
"""The session cluster's node URL: settings and CLI environments made from a URL alone
(`make_settings(redis_url)`) know by it to use the cluster client."""


def is_cluster_url(url: str) -> bool:
    return url in _CLUSTER_URLS


SyncClient = redis.Redis | RedisCluster


@dataclass(frozen=True)
class Topology:
    name: str
    url: str
    cluster: bool

    def __post_init__(self) -> None:
        if self.cluster:
            _CLUSTER_URLS.add(self.url)

    def sync_client(self) -> SyncClient:
        """A blocking client for a test's own look at the keys (a context manager)."""
        return sync_client(self.url)

    def async_client(self, timeout_seconds: float = 2, retries: int = 1) -> Redis:
        return connect(self.url, timeout_seconds, retries, cluster=self.cluster)

    def flush(self) -> None:
        """Empties every primary (FLUSHALL goes to each primary on the cluster client); the
        replicas follow."""
        with self.sync_client() as client:
            client.flushall()


def sync_client(url: str) -> SyncClient:
    """`redis.Redis`, or the cluster client where `url` is the session cluster's."""
    if is_cluster_url(url):
        return RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def all_keys(client: SyncClient, pattern: str = "*") -> list[bytes]:
    """KEYS over every primary (on the cluster client KEYS alone asks one node)."""
    if isinstance(client, RedisCluster):
        found = client.keys(pattern, target_nodes=RedisCluster.PRIMARIES)
    else:
        found = client.keys(pattern)
    return cast("list[bytes]", found)
