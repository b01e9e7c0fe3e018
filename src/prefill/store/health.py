"""Health: can Redis take a write now, and would it keep one through a crash. On a cluster, the
answer is every primary's: a link may need any of them."""

from __future__ import annotations

from typing import Any

import redis.exceptions
from redis.asyncio import Redis, RedisCluster

from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import BUCKETS, HEALTH_PROBE, health_probe_key


class HealthStore(StoreBase):
    async def check_writable(self) -> None:
        """Raises StoreUnavailable unless Redis (every primary of a cluster) accepts a write
        (a read-only replica does not)."""
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for key in await self._probe_keys():
                pipe.set(key, b"1", ex=60)
            await pipe.execute()

    async def _probe_keys(self) -> list[str]:
        """One key on each primary: a cluster's bucket keys cover all of them."""
        cluster = _as_cluster(self._redis)
        if cluster is None:
            return [HEALTH_PROBE]
        await cluster.initialize()  # the slot map, as of now (a failover changes it)
        on_node: dict[str, str] = {}
        for bucket in range(BUCKETS):
            key = health_probe_key(bucket)
            node = cluster.get_node_from_key(key)
            on_node.setdefault(node.name if node else "", key)
        return list(on_node.values())

    async def durability_problem(self) -> str | None:
        """Why an acknowledged write could be lost in a crash, if a server says so; None
        when each fsyncs every write (or does not let us look: managed Redis often forbids
        CONFIG, and its operator then answers for durability)."""
        cluster = _as_cluster(self._redis)
        try:
            if cluster is None:
                configs: list[Any] = [await self._redis.config_get("append*")]
            else:
                await cluster.initialize()
                configs = [
                    await cluster.config_get("append*", target_nodes=node)
                    for node in cluster.get_primaries()
                ]
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
            return None
        for config in configs:
            appendonly, appendfsync = config.get("appendonly"), config.get("appendfsync")
            if appendonly != "yes" or appendfsync != "always":
                return f"appendonly={appendonly!r} appendfsync={appendfsync!r}"
        return None


def _as_cluster(client: Redis) -> RedisCluster | None:
    """The cluster client behind `client` (store/client.py types both as Redis), or None."""
    return client if isinstance(client, RedisCluster) else None
