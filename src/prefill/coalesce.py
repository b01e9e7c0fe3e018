"""Group commit: the Redis commands of concurrent requests go out together, in one pipelined
round trip.

Every acknowledged write costs Redis an fsync (AOF `appendfsync always`), and every round trip
costs redis-py a pipeline of its own. While one batch is on its way, the commands of requests
that arrive meanwhile wait for the next, which leaves as soon as the first is answered: under
load a round trip carries many requests' commands, with no added wait when idle. Each caller
still gets its own replies only when Redis has answered the batch, so a write is durable
before its caller goes on, exactly as if it had been sent alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from typing import Any

import hiredis
import redis.exceptions
from redis.asyncio import Redis, RedisCluster

try:  # redis-py's internals as 8.x has them; without them, replies are read one by one
    from redis._parsers import hiredis as redis_hiredis
except ImportError:  # another redis-py
    redis_hiredis = None  # type: ignore[assignment]
_HIREDIS_PARSER: Any = getattr(redis_hiredis, "_AsyncHiredisParser", None)
NOT_ENOUGH_DATA: Any = getattr(redis_hiredis, "NOT_ENOUGH_DATA", object())

Command = tuple[Any, ...]
"""A Redis command as redis-py's `execute_command` takes it: ("HINCRBY", key, field, 1)."""
Waiter = tuple[list[Command], "asyncio.Future[list[Any]]"]
"""A caller's commands and where its replies go."""


class Packed(tuple[Any, ...]):
    """A command whose RESP bytes were made beforehand (`packed_head`, `with_tail`): hiredis
    formats each argument with printf, about a thousand instructions an argument, which a
    command sent again and again with the same head (a funnel count's) need not pay each time."""

    packed: bytes


def packed_head(head: Command, tail_length: int) -> bytes:
    """`head` packed as the start of a command of `tail_length` more arguments."""
    packed: bytes = hiredis.pack_command(head)
    return b"*%d\r\n" % (len(head) + tail_length) + packed[packed.index(b"\r\n") + 2 :]


def with_tail(head: Command, head_packed: bytes, tail: tuple[str, ...]) -> Packed:
    """The command `head` + `tail`, packed from `head`'s `packed_head` (made for this many
    arguments more): the same bytes as hiredis packs."""
    command = Packed((*head, *tail))
    parts = [head_packed]
    for text in tail:
        value = text.encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(value), value))
    command.packed = b"".join(parts)
    return command


class Coalescer:
    """Runs commands in one pipeline (no MULTI) together with those of concurrent callers."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        """Asked once: RedisCluster's isinstance runs a typing Protocol's Python check."""
        self._waiting: list[Waiter] = []
        self._sending = False
        self._connection: Any = None
        """On one Redis, the connection every batch goes by (one batch is out at a time),
        taken from the pool once: redis-py's pool locks, checks and counts each taking and
        return, which cost a refused link about a fifth of its instructions (callgrind)."""
        self.round_trips = 0
        """Pipelines sent so far (tests and benchmarks look at it)."""

    async def execute(self, commands: list[Command]) -> list[Any]:
        """The replies to `commands`, in order; a command Redis refused is its exception, as
        redis-py's `raise_on_error=False` gives it. Raises what the round trip raised (a
        timeout, a lost connection) when it failed as a whole."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, future))
        if not self._sending:
            self._sending = True
            # Started on the next turn of the loop: the requests this turn still runs add
            # their commands to the first batch.
            # In a context of its own: the batch serves many requests, so it must not carry
            # the request id (or anything else) of the one that started it into its log lines.
            # Named: a task without a name formats one ("Task-123") as it is made.
            asyncio.get_running_loop().create_task(
                self._send_while_waiting(), name="redis batch", context=contextvars.Context()
            )
        return await future

    async def _send_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                failure = await self._send(batch)
                if failure is not None:
                    # Those who came while the batch was out share its fate: sent next, they
                    # would wait a second timeout, and fail closed twice as late.
                    waiting, self._waiting = self._waiting, []
                    _fail(waiting, failure)
        finally:
            self._sending = False
            for _, future in self._waiting:  # Only when this task was cancelled (shutdown).
                if not future.done():
                    future.set_exception(redis.exceptions.ConnectionError("shutting down"))
            self._waiting = []

    async def _after_failure(self, error: Exception) -> None:
        """A cluster client's pipeline keeps the slot map it has, even when a failover has
        made it wrong: closing the client makes its next use read the map anew (as redis-py's
        own commands do after a connection error), so links heal within seconds."""
        if self._cluster and isinstance(error, TOPOLOGY_ERRORS):
            await self._client.aclose()

    async def _send(self, batch: list[Waiter]) -> Exception | None:
        """Sends the batch and hands each caller its replies; the error, when the round trip
        failed as a whole."""
        sent = [command for commands, _ in batch for command in commands]
        self.round_trips += 1
        try:
            replies = await self._round_trip(sent)
        except BaseException as exc:
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise  # Cancelled (shutdown): the callers have their error.
            await self._after_failure(exc)
            return exc
        for reply in replies:
            if isinstance(reply, TOPOLOGY_ERRORS):
                await self._after_failure(reply)
                break
        start = 0
        for commands, future in batch:
            if not future.done():
                future.set_result(replies[start : start + len(commands)])
            start += len(commands)
        return None

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        """The replies to `commands`, sent in one pipeline (no MULTI), a refused command's as
        its exception. A cluster's pipeline routes the commands to their nodes; on one Redis,
        `one_round_trip`."""
        if self._cluster:
            pipe = self._client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=False)
        if self._connection is None:
            pool = self._client.connection_pool
            self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        elif _closed_by_server(self._connection):
            # What the pool checks before it hands a connection out: a restarted server
            # closed it while no batch was out. Closed here, it connects again as it sends.
            await self._connection.disconnect(nowait=True)
        return await round_trip_on(self._client, self._connection, commands)


async def one_round_trip(client: Redis, commands: list[Command]) -> list[Any]:
    """The replies to `commands` from one Redis (not a cluster), sent in one pipeline (no
    MULTI), a refused command's as its exception, under one deadline, the client's socket
    timeout: redis-py's pipeline would arm a timeout for each reply (about a thirtieth of a
    widget request's samples, profiled) and pack the commands in Python (about a twentieth)."""
    pool = client.connection_pool
    connection: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        return await round_trip_on(client, connection, commands)
    finally:
        await pool.release(connection)


async def round_trip_on(client: Redis, connection: Any, commands: list[Command]) -> list[Any]:
    """`one_round_trip` on a connection the caller holds."""
    try:
        # Retried as redis-py retries its pipelines: a pooled connection that the server
        # closed (a restart) is connected again (QuickRetry: only while still young).
        replies: list[Any] = await connection.retry.call_with_retry(
            lambda: _exchange(client, connection, commands),
            lambda _error: connection.disconnect(),
        )
        return replies
    except BaseException:
        # A deadline or a failure may leave replies unread on the socket: the connection
        # is closed, never used for the next batch with another batch's replies unread.
        await connection.disconnect(nowait=True)
        raise


async def _exchange(client: Redis, connection: Any, commands: list[Command]) -> list[Any]:
    timeout = connection.socket_timeout
    replies: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            # hiredis packs in C what redis-py's connection packs in Python, the same bytes
            # for the str, bytes, int and float arguments sent here, at about a tenth of
            # its cost (2 against 23 µs for an audit write, timeit); a Packed one has them.
            packed = [c.packed if type(c) is Packed else hiredis.pack_command(c) for c in commands]
            await _send_packed(connection, b"".join(packed))
            raw = await _read_replies(connection, len(commands))
    except TimeoutError as exc:
        raise redis.exceptions.TimeoutError(f"no reply within {timeout} s") from exc
    # What redis-py's case-insensitive get does (its keys are upper-cased names), without
    # its Python method and super() call a command.
    callbacks: Any = client.response_callbacks
    get = dict.get if isinstance(callbacks, dict) else type(callbacks).get
    for command, reply in zip(commands, raw, strict=True):
        if isinstance(reply, redis.exceptions.ResponseError):
            replies.append(reply)  # A command Redis refused: its caller's to raise.
            continue
        callback = get(callbacks, command[0].upper())
        replies.append(callback(reply) if callback else reply)
    return replies


async def _send_packed(connection: Any, data: bytes) -> None:
    """`data` written as redis-py's `send_packed_command` writes it, without its own deadline
    for the write: with a socket timeout it runs the write in a task of its own under
    `asyncio.wait_for` (a task, a timer and two turns of the loop a batch), where the batch's
    deadline already holds. A connection not yet connected, or a redis-py without the inner
    write, goes redis-py's whole way."""
    write = getattr(connection, "_send_packed_command", None)
    if write is None or not connection.is_connected:
        await connection.send_packed_command(data)
        return
    await connection.check_health()
    try:
        await write([data])
    except OSError as exc:  # As send_packed_command says it; the caller then disconnects.
        raise redis.exceptions.ConnectionError(f"writing a batch: {exc!r}") from exc


async def _read_replies(connection: Any, count: int) -> list[Any]:
    """`count` replies off the connection, a refused command's as its exception. With hiredis
    (what the service installs), straight from its reader: redis-py's `read_response` runs
    three coroutines and its checks for each reply (two to four a request)."""
    parser: Any = connection._parser
    if not _parsed_by_hiredis(connection):
        return [await _read_one(connection) for _ in range(count)]
    reader: hiredis.Reader = parser._reader
    replies: list[Any] = []
    try:
        while len(replies) < count:
            reply = reader.gets()
            if reply is NOT_ENOUGH_DATA:
                await parser.read_from_socket()  # ConnectionError at the end of the stream
            elif isinstance(reply, redis.exceptions.ConnectionError):
                raise reply
            elif isinstance(reply, PUSH):
                # RESP3 out-of-band data, no reply (none is asked for: handled as redis-py does).
                await parser.handle_push_response(reply)
            else:
                replies.append(reply)
    except OSError as exc:
        raise redis.exceptions.ConnectionError(f"reading a reply: {exc!r}") from exc
    if connection.health_check_interval:
        # As read_response does: a connection just heard from needs no PING before its next use.
        next_check = asyncio.get_running_loop().time() + connection.health_check_interval
        connection.next_health_check = next_check
    return replies


def _parsed_by_hiredis(connection: Any) -> bool:
    """Whether the replies can be read from hiredis's reader here: redis-py's internals as
    8.x has them (a release that renames them is read reply by reply, as redis-py reads)."""
    parser = getattr(connection, "_parser", None)
    return (
        _HIREDIS_PARSER is not None
        and isinstance(parser, _HIREDIS_PARSER)
        and isinstance(getattr(parser, "_reader", None), hiredis.Reader)
        and hasattr(parser, "read_from_socket")
        and hasattr(parser, "handle_push_response")
    )


class _NoPushType:
    """Before hiredis 3.2 no reply is a push message."""


PUSH: type = getattr(hiredis, "PushNotification", _NoPushType)
"""What hiredis (3.2 on) makes of a RESP3 push message."""


async def _read_one(connection: Any) -> Any:
    try:
        # math.inf: no timeout of its own, the batch's deadline holds.
        return await connection.read_response(timeout=math.inf)
    except redis.exceptions.ResponseError as refused:
        return refused


def _closed_by_server(connection: Any) -> bool:
    """Whether the server has closed the connection (its end of stream has been read): what
    the event loop saw while the connection was idle, without a read of its own."""
    reader = getattr(connection, "_reader", None)  # redis-py's asyncio StreamReader
    return reader is not None and (reader.at_eof() or reader.exception() is not None)


TOPOLOGY_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.AskError,  # MovedError too
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
)
"""What a cluster answers while a primary fails over: a node gone, slots moved or uncovered."""


def _fail(waiters: list[Waiter], exc: BaseException) -> None:
    for _, future in waiters:
        if not future.done():  # A caller that gave up (cancelled) wants nothing.
            future.set_exception(_own_copy(exc))


def _own_copy(exc: BaseException) -> Exception:
    """An exception of the same type for each caller: one instance raised in many tasks would
    collect all their tracebacks."""
    if not isinstance(exc, Exception):
        return redis.exceptions.ConnectionError("shutting down")
    try:
        return type(exc)(*exc.args)
    except Exception:
        return redis.exceptions.ConnectionError(type(exc).__name__)
