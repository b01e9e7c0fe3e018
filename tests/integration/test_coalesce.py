"""Group commit against a real Redis: concurrent callers share round trips, and each still gets
exactly its own replies, its own errors, and a failure within the timeout."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
import redis.exceptions
from redis.asyncio import Redis

from prefill.coalesce import Coalescer, _parsed_by_hiredis
from prefill.storage import EmbeddedRedis
from prefill.store.client import connect
from tests.topology import is_cluster_url


async def test_concurrent_callers_share_round_trips_and_get_their_own_replies(
    redis_url: str,
) -> None:
    client = connect(redis_url, timeout_seconds=2, retries=0, cluster=is_cluster_url(redis_url))
    coalescer = Coalescer(client)
    try:
        replies = await asyncio.gather(
            *(
                coalescer.execute([("INCRBY", f"k{i}", i), ("INCRBY", f"k{i}", 1)])
                for i in range(50)
            )
        )
        assert replies == [[i, i + 1] for i in range(50)]
        assert coalescer.round_trips < 50
        # Nothing waiting: the next caller's batch leaves at once, alone.
        assert await coalescer.execute([("GET", "k3")]) == [b"4"]
    finally:
        await client.aclose()


@pytest.mark.single_redis(reason="a cluster's batches go through redis-py's cluster pipeline")
async def test_replies_are_read_straight_from_hiredis_on_a_connection_of_the_service(
    redis_url: str,
) -> None:
    """The short way to a batch's replies needs redis-py's internals as this version has them:
    a redis-py that renamed them is read reply by reply (slower), and this test says so."""
    client = connect(redis_url, timeout_seconds=2, retries=0)
    pool = client.connection_pool
    connection: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        await connection.connect()
        assert _parsed_by_hiredis(connection)
    finally:
        await pool.release(connection)
        await client.aclose()


@pytest.mark.single_redis(reason="a cluster's batches go through redis-py's cluster pipeline")
async def test_a_batch_is_written_without_a_task_of_its_own(redis_url: str) -> None:
    """redis-py's send_packed_command runs each write in a task under asyncio.wait_for when
    the client has a socket timeout; a batch, under its own deadline, writes directly. A
    redis-py without the inner write goes the long way (slower), and this test says so."""
    client = connect(redis_url, timeout_seconds=2, retries=0)
    coalescer = Coalescer(client)
    made: list[str] = []
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    try:
        await coalescer.execute([("SET", "k", 1)])  # connects (redis-py's whole way)
        loop.set_task_factory(counting)
        assert await coalescer.execute([("GET", "k")]) == [b"1"]
    finally:
        loop.set_task_factory(factory)
        await client.aclose()
    assert made == ["Coalescer._send_while_waiting"]


@pytest.mark.single_redis(reason="a cluster's batches go through redis-py's cluster pipeline")
async def test_replies_are_converted_as_redis_py_converts_them_whatever_the_names_case(
    redis_url: str,
) -> None:
    client = connect(redis_url, timeout_seconds=2, retries=0)
    coalescer = Coalescer(client)
    try:
        replies = await coalescer.execute(
            [("incr", "k"), ("HSET", "h", "f", "v"), ("hgetall", "h"), ("HGETALL", "h")]
        )
        assert replies == [1, 1, {b"f": b"v"}, {b"f": b"v"}]
        assert await coalescer.execute([("GET", "k"), ("EVAL", "return 7", 0)]) == [b"1", 7]
    finally:
        await client.aclose()


async def test_a_refused_command_is_only_its_callers_error(redis_url: str) -> None:
    client = connect(redis_url, timeout_seconds=2, retries=0, cluster=is_cluster_url(redis_url))
    coalescer = Coalescer(client)
    try:
        await client.set("text", "not a hash")
        wrong, right = await asyncio.gather(
            coalescer.execute([("HINCRBY", "text", "f", 1)]),
            coalescer.execute([("HINCRBY", "hash", "f", 1)]),
        )
        assert isinstance(wrong[0], redis.exceptions.ResponseError)
        assert right == [1]
    finally:
        await client.aclose()


async def test_every_waiting_caller_fails_within_the_timeout_when_redis_freezes(
    own_redis: EmbeddedRedis,
) -> None:
    client: Redis = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    coalescer = Coalescer(client)
    await coalescer.execute([("PING",)])  # Connected before the freeze.
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        outcomes = await asyncio.gather(
            *(coalescer.execute([("SET", f"k{i}", 1)]) for i in range(10)),
            return_exceptions=True,
        )
        assert time.monotonic() - began < 2.0  # The README's bound: the Redis timeout, then 503.
        assert all(isinstance(o, redis.exceptions.RedisError) for o in outcomes), outcomes
        assert len({id(o) for o in outcomes}) == len(outcomes)  # Each caller its own error.
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
        await client.aclose()


async def test_a_caller_arriving_while_a_batch_hangs_fails_with_it_not_a_timeout_later(
    own_redis: EmbeddedRedis,
) -> None:
    client: Redis = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    coalescer = Coalescer(client)
    await coalescer.execute([("PING",)])
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        first = asyncio.ensure_future(coalescer.execute([("SET", "a", 1)]))
        await asyncio.sleep(0.1)  # The first batch is out, waiting for the frozen server.
        arrived = time.monotonic()
        with pytest.raises(redis.exceptions.RedisError):
            await coalescer.execute([("SET", "b", 1)])
        # Within its own timeout, not the first batch's timeout and then a second one of its own.
        assert time.monotonic() - arrived < 0.5 + 0.25
        with pytest.raises(redis.exceptions.RedisError):
            await first
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
        await client.aclose()


@pytest.mark.parametrize("callers", [1, 3])
async def test_a_caller_that_gives_up_does_not_stop_the_others(
    redis_url: str, callers: int
) -> None:
    client = connect(redis_url, timeout_seconds=2, retries=0, cluster=is_cluster_url(redis_url))
    coalescer = Coalescer(client)
    try:
        quitter = asyncio.ensure_future(coalescer.execute([("INCR", "quit")]))
        others = [coalescer.execute([("INCR", f"stay{i}")]) for i in range(callers)]
        quitter.cancel()
        assert await asyncio.gather(*others) == [[1]] * callers
    finally:
        await client.aclose()


async def test_a_batch_that_timed_out_leaves_no_replies_for_the_next_one(
    own_redis: EmbeddedRedis,
) -> None:
    client: Redis = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    coalescer = Coalescer(client)
    await coalescer.execute([("SET", "old", "stale"), ("SET", "new", "fresh")])
    assert own_redis.pid is not None
    os.kill(own_redis.pid, signal.SIGSTOP)
    try:
        with pytest.raises(redis.exceptions.TimeoutError):
            await coalescer.execute([("GET", "old"), ("GET", "old")])
    finally:
        os.kill(own_redis.pid, signal.SIGCONT)
    try:
        # The server answers the timed-out GETs once it runs again; on a reused connection
        # they would be read as this batch's replies.
        await asyncio.sleep(0.1)
        assert await coalescer.execute([("GET", "new"), ("HGETALL", "none")]) == [b"fresh", {}]
    finally:
        await client.aclose()


async def test_a_restarted_server_is_reached_at_once_without_a_retry(
    own_redis: EmbeddedRedis,
) -> None:
    """Connections that died with the server, the batches' own and the pool's, are connected
    again before use: no request fails once Redis is back, even with no retries."""
    client: Redis = connect(own_redis.url, timeout_seconds=0.5, retries=0)
    coalescer = Coalescer(client)
    try:
        await asyncio.gather(coalescer.execute([("SET", "k", 1)]), client.get("k"))
        own_redis.stop()
        own_redis.start()
        await asyncio.sleep(0.1)  # The loop reads the old connections' end of stream.
        assert await coalescer.execute([("GET", "k")]) == [b"1"]
        assert await client.get("k") == b"1"
    finally:
        await client.aclose()
