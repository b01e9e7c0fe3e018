"""Redis clients: one Redis, or a Redis Cluster, with timeouts and retries that fail closed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import redis
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.maint_notifications import MaintNotificationsConfig

T = TypeVar("T")

RESP = 2
"""RESP2, as redis-py before 8 speaks by default, not 8's RESP3: hiredis builds a RESP3 map
(a customer's HGETALL) by calling the dict's `popitem` for each value, about a tenth of a
microsecond's work each in RESP2's flat array (a widget request read about 30k instructions
more, 3%). Every reply the service reads comes as the same Python value either way."""


def connect(url: str, timeout_seconds: float, retries: int, cluster: bool = False) -> Redis:
    """An asyncio client that gives up quickly, so an unreachable Redis fails closed, not slow.
    With `cluster`, a Redis Cluster client: `url` names any one node, it finds the others.

    Only connection errors are retried (a pooled connection that died with a restarted server):
    a timed-out write may have been applied, and repeating it would record it twice. The pool
    reconnects on its own once the server is back: no restart needed.
    """
    if cluster:
        # RedisCluster has every command method the store calls on Redis; typed as one.
        return cast(
            "Redis",
            RedisCluster.from_url(
                url,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                retry=QuickRetry(retries, timeout_seconds),
                decode_responses=False,
                protocol=RESP,
            ),
        )
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=QuickRetry(retries, timeout_seconds),
        health_check_interval=30,
        decode_responses=False,
        protocol=RESP,
        # With "auto" (redis-py 8's default) the pool skips its check that a pooled
        # connection is still open before handing it out, and Redis before 8 has no such
        # notifications to give: a connection that died with a restarted server was used.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )


class QuickRetry(Retry):
    """Retries a connection error only while the call is young: one that comes at once (a
    pooled connection that died with a restarted server) is worth another try, one that took
    half the timeout to come (a frozen server: a new connection connects, then its handshake
    times out) is not. So a frozen Redis is answered within the timeout, whatever `retries`."""

    def __init__(self, retries: int, timeout_seconds: float) -> None:
        self._quick_backoff = ExponentialBackoff(cap=timeout_seconds, base=0.01)
        super().__init__(self._quick_backoff, retries, supported_errors=(redis.ConnectionError,))
        self._quick_retries = retries
        self._young_seconds = timeout_seconds / 2

    async def call_with_retry(  # redis-py 5 to 8 call it with these arguments or fewer
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        loop = asyncio.get_running_loop()
        started = loop.time()
        failures = 0
        while True:
            try:
                return await do()
            except redis.ConnectionError as error:
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                young = loop.time() - started < self._young_seconds
                wanted = is_retryable is None or is_retryable(error)
                if not (young and wanted) or failures > self._quick_retries:
                    raise
                await asyncio.sleep(self._quick_backoff.compute(failures))
