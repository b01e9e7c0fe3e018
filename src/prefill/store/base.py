"""What every aggregate of the store shares: the client, its scripts, and writes in one trip.

A write's round trip costs an fsync (`appendfsync always`), so the writes a request makes go
together: its audit entry, its refusal count and its funnel counters in one pipeline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, cast

import redis.exceptions
from redis.asyncio import Redis, RedisCluster
from redis.typing import EncodableT

from prefill.coalesce import Coalescer, Command, one_round_trip, packed_head, with_tail
from prefill.funnel import FunnelUpdate
from prefill.pseudonyms import Pseudonymizer
from prefill.ratelimit import Limit, LimitKind
from prefill.store.durability import Confirmed, ReplicaWait, replica_wait
from prefill.store.errors import StoreUnavailable, unavailable_on_error
from prefill.store.keys import (
    FUNNEL_SHARDS,
    bucket_of,
    funnel_counts_key,
    funnel_people_key,
    funnel_salt_key,
    funnel_shard_of,
    rate_key,
    refusal_counts_key,
    refused_rate_key,
    replica_marker_key,
)
from prefill.store.scripts import ScriptCall, Scripts, script_reply

logger = logging.getLogger("prefill.store")

REPLICA_MARKER_SECONDS = 60
"""A replication marker (`_confirm_replicated`) is only needed until its wait returns."""


FUNNEL_HEADS_KEPT = 4096
"""Funnel command heads kept (campaign, shard, stages, counters: a few hundred bytes each):
every campaign's scanner hits and opens in every shard, for dozens of active campaigns."""


class _FunnelHead(NamedTuple):
    """A funnel update's command as far as it is the same for every update of its shape."""

    call: ScriptCall
    """The script call without the salt and the pseudonyms (for a count of no one, all of it)."""
    packed: bytes
    """Its command packed as the head of one with the salt and the pseudonyms."""


class RateCount(NamedTuple):
    """One request to count against a limit: whose (an address, or a link's identity)."""

    kind: LimitKind
    subject: str
    limit: Limit


class StoreBase:
    """The state the aggregates share; one instance per Redis client."""

    def __init__(
        self, client: Redis, pseudonymizer: Pseudonymizer, audit_retention_days: int = 400
    ) -> None:
        self._redis = client
        self._pseudonyms = pseudonymizer
        self._audit_retention_seconds = audit_retention_days * 86_400
        self._scripts = Scripts(client)
        self._reads = Coalescer(client)
        self._writes = Coalescer(client)
        self._funnel_heads: dict[tuple[Any, ...], _FunnelHead] = {}
        # Counts of no one go to each shard in turn, from a random one: as even as can be.
        self._funnel_shards = itertools.islice(
            itertools.cycle(range(FUNNEL_SHARDS)), secrets.randbelow(FUNNEL_SHARDS), None
        )
        self._versions: dict[tuple[str, str], str] = {}
        """Each primary's Redis version, by its address and replication id: a restart, an
        upgrade or a failover behind the same address gives a new replication id."""

    async def _hgetall_each(
        self, customer_ids: Iterable[str], key_of: Callable[[str], str]
    ) -> dict[str, dict[bytes, bytes]]:
        """One hash per customer id (deduplicated), in one round trip."""
        ids = list(dict.fromkeys(customer_ids))
        hashes = await self._read_hashes([key_of(customer_id) for customer_id in ids])
        async with unavailable_on_error():  # a key of another type: as every Redis failure
            for fields in hashes:
                if isinstance(fields, Exception):
                    raise fields
        return dict(zip(ids, cast("list[dict[bytes, bytes]]", hashes), strict=True))

    async def _read_hashes(self, keys: list[str]) -> list[dict[bytes, bytes] | Exception]:
        """Each hash's fields (empty for none), or the error its key gave (a key of another
        type), in one round trip: one script on one Redis, a pipeline on a cluster."""
        if not keys:
            return []
        async with unavailable_on_error():
            if isinstance(self._redis, RedisCluster):
                pipe = self._redis.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                hashes = await pipe.execute(raise_on_error=False)
                for reply in hashes:  # a node lost or slow: unavailable, not a bad record
                    if isinstance(reply, Exception) and not _wrong_type(reply):
                        raise reply
                return cast("list[dict[bytes, bytes] | Exception]", hashes)
            (replies,) = await self._run_scripts([ScriptCall(self._scripts.read_hashes, keys, [])])
        return [
            dict(zip(flat[::2], flat[1::2], strict=True))
            if isinstance(flat, list)
            else redis.exceptions.ResponseError("WRONGTYPE not a hash")
            for flat in replies
        ]

    async def _read_strings(self, keys: list[str]) -> list[bytes | None]:
        """Each string's value (None for none), in one round trip: one script on one Redis (a
        reply per key cost an import's look-ups ~10 µs each in the client), a pipeline on a
        cluster (each key in its own bucket: no MGET). A key of another type raises."""
        if not keys:
            return []
        if isinstance(self._redis, RedisCluster):
            async with unavailable_on_error():
                pipe = self._redis.pipeline(transaction=False)
                for key in keys:
                    pipe.get(key)
                return cast("list[bytes | None]", await pipe.execute())
        (found,) = await self._run_scripts([ScriptCall(self._scripts.read_strings, keys, [])])
        return cast("list[bytes | None]", found)

    async def _commands(self, commands: list[Command]) -> list[Any]:
        """The replies to read-only `commands`, in one round trip: packed by hiredis on one
        Redis (redis-py's pipeline packs and answers each in Python, ~40 µs a command for a
        segment's listing), a pipeline on a cluster. A refused command raises."""
        async with unavailable_on_error():
            if isinstance(self._redis, RedisCluster):
                pipe = self._redis.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                return cast("list[Any]", await pipe.execute())
            replies = await one_round_trip(self._redis, commands)
            for reply in replies:
                if isinstance(reply, redis.exceptions.RedisError):
                    raise reply
            return replies

    async def _run_scripts(self, calls: list[ScriptCall]) -> list[Any]:
        """Script calls pipelined in one round trip (no MULTI), each by its SHA (see
        `_in_one_trip`); their replies, in order. A server that lost the scripts (a restart, a
        new primary) answers NOSCRIPT: they are loaded (on every primary of a cluster) and the
        calls it did not run are sent again, once; those another node ran are not run twice
        (a compare-and-set would fail against its own write)."""
        async with unavailable_on_error():
            replies = list(await self._send_scripts(calls))
            lost = [
                i
                for i, reply in enumerate(replies)
                if isinstance(reply, redis.exceptions.NoScriptError)
            ]
            if lost:
                for script in {calls[i].script.sha: calls[i].script for i in lost}.values():
                    await self._redis.script_load(script.script)
                again = await self._send_scripts([calls[i] for i in lost])
                for i, reply in zip(lost, again, strict=True):
                    replies[i] = reply
            for reply in replies:
                if isinstance(reply, redis.exceptions.RedisError):
                    raise reply
            return replies

    async def _send_scripts(self, calls: list[ScriptCall]) -> list[Any]:
        commands: list[Command] = [
            ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args) for call in calls
        ]
        if not isinstance(self._redis, RedisCluster):
            # Packed by hiredis, under one deadline: an import's batch is a command of
            # thousands of arguments, which redis-py's pipeline packs in Python.
            return await one_round_trip(self._redis, commands)
        pipe = self._redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)

    async def _write_durably(self, call: ScriptCall) -> Any:
        """Run a write whose answer promises durability (a consent change, a revocation): where
        the primary holding its keys has replicas, the answer waits until one of them has the
        write (durability.py, on the same connection), or StoreUnavailable if none has it in
        time."""
        wait, node = await self._replica_wait_for(call.keys[0])
        route = {"target_nodes": node} if node is not None else {}
        for _ in range(2):  # a second time after loading a lost script
            pipe = self._redis.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
            for command in wait.commands if wait is not None else ():
                pipe.execute_command(*command, **route)
            async with unavailable_on_error():
                reply, *confirmed = await pipe.execute(raise_on_error=False)
                if isinstance(reply, redis.exceptions.NoScriptError):
                    await self._redis.script_load(call.script.script)
                    continue
                if isinstance(reply, redis.exceptions.RedisError):
                    raise reply
            if wait is not None:
                _check_confirmed(wait, confirmed)
            return reply
        raise StoreUnavailable("script could not be loaded")

    async def _confirm_replicated(self, keys: Iterable[str]) -> None:
        """Wait until a replica of each primary holding one of `keys` has every write made to
        it so far (writes of several slots, over several connections): a marker written beside
        the first of its keys, then the wait, on one connection. StoreUnavailable if a primary
        with replicas has none confirm in time; nothing to wait for where it has none."""
        by_node: dict[str, str] = {}
        if isinstance(self._redis, RedisCluster):
            async with unavailable_on_error():  # no slot map yet, or a slot without a node
                await self._redis.initialize()
                for key in keys:
                    by_node.setdefault(self._redis.get_node_from_key(key).name, key)
        else:
            by_node[""] = next(iter(keys))
        await asyncio.gather(*(self._confirm_beside(key) for key in by_node.values()))

    async def _confirm_beside(self, key: str) -> None:
        wait, node = await self._replica_wait_for(key)
        if wait is None:
            return
        route = {"target_nodes": node} if node is not None else {}
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(replica_marker_key(key), 1, ex=REPLICA_MARKER_SECONDS)
            for command in wait.commands:
                pipe.execute_command(*command, **route)
            _, *confirmed = await pipe.execute()
        _check_confirmed(wait, confirmed)

    async def _replica_wait_for(self, key: str) -> tuple[ReplicaWait | None, Any]:
        """How the primary holding `key` waits for a replica (None: it has none), and that
        primary on a cluster (None on one Redis). Asked each time: a failover changes both."""
        node = None
        info_args: dict[str, Any] = {}
        if isinstance(self._redis, RedisCluster):
            async with unavailable_on_error():
                await self._redis.initialize()  # a new client has no slot map before its first call
                node = self._redis.get_node_from_key(key)  # mid-failover, maybe no node: a 503
            info_args = {"target_nodes": node}
        async with unavailable_on_error():
            # The replication section alone: the default sections cost the client ~3x to parse.
            replication = await self._redis.info("replication", **info_args)
            if not int(replication.get("connected_slaves", 0)):
                return None, node
            replid = str(replication.get("master_replid", ""))
            server_id = (node.name if node is not None else "", replid)
            if server_id not in self._versions:
                server = await self._redis.info("server", **info_args)
                self._versions[server_id] = str(server.get("redis_version", ""))
        return replica_wait(self._versions[server_id]), node

    def _oldest_kept_id(self) -> str:
        return f"{int((time.time() - self._audit_retention_seconds) * 1000)}-0"

    def _rate_call(self, rate: RateCount, refusal: tuple[str, str] | None = None) -> ScriptCall:
        """The rate script for `rate`, keyed by a keyed pseudonym of its subject (an address or
        a link's identity): the key says nothing about whom it counts. With a `refusal` (day,
        field), the refusal is counted too, in the day's counts of the pseudonym's bucket."""
        pseudonym = self._pseudonyms.of(f"rate:{rate.kind.value}:{rate.subject}")
        args: list[EncodableT] = [rate.limit.window_seconds * 1000, rate.limit.count]
        if refusal is None:
            return ScriptCall(self._scripts.rate_count, [rate_key(rate.kind, pseudonym)], args)
        day, field = refusal
        keys = [refused_rate_key(pseudonym), refusal_counts_key(day, bucket_of(pseudonym))]
        args += [field, self._audit_retention_seconds]
        return ScriptCall(self._scripts.rate_count, keys, args)

    def _funnel_call(self, update: FunnelUpdate) -> ScriptCall:
        """The counters, and each person as a keyed pseudonym salted with the campaign's own
        salt in the stage's HyperLogLog (see COUNT_FUNNEL_SCRIPT), in the person's shard
        (keys.py); an update that counts no one goes to the next shard in turn and leaves the
        salts alone.

        Its command's head (keys, counters: campaign ids and shards, nothing personal) is made
        and packed once per shape (_FunnelHead): only the salt and the pseudonyms are new each
        time, and a count of no one is sent as it was made."""
        people = update.people if update.link_lifetime > 0 else {}
        if people:
            customers = sorted(set(people.values()))
            shard = funnel_shard_of(customers[0])
        else:
            shard = next(self._funnel_shards)
        lifetime = update.link_lifetime if people else 0
        shape = (update.campaign_id, shard, lifetime, *people, *update.counts.items())
        head = self._funnel_heads.get(shape)
        if head is None:
            head = self._funnel_head(update, shard, list(people), lifetime)
            if len(self._funnel_heads) >= FUNNEL_HEADS_KEPT:
                self._funnel_heads.clear()  # shapes no longer used go; the rest come back
            self._funnel_heads[shape] = head
        if not people:
            return head.call
        # A salt, for a shard that has none yet; then each person's pseudonym (made once).
        pseudonyms = {customer_id: self._pseudonyms.of(customer_id) for customer_id in customers}
        tail = (secrets.token_hex(16), *[pseudonyms[customer] for customer in people.values()])
        command = with_tail(head.call.command or (), head.packed, tail)
        return ScriptCall(head.call.script, head.call.keys, [*head.call.args, *tail], command)

    def _funnel_head(
        self, update: FunnelUpdate, shard: int, stages: list[str], lifetime: int
    ) -> _FunnelHead:
        campaign_id = update.campaign_id
        keys = [funnel_counts_key(campaign_id, shard), funnel_salt_key(campaign_id, shard)]
        keys += [funnel_people_key(campaign_id, shard, stage) for stage in stages]
        args: list[EncodableT] = [self._audit_retention_seconds, lifetime, len(update.counts)]
        for field, amount in update.counts.items():
            args += [field, amount]
        script = self._scripts.count_funnel
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        tail_length = 1 + len(stages) if stages else 0  # the salt and the pseudonyms
        packed = packed_head(command, tail_length)
        if not stages:  # the whole command, sent as it is each time
            command = with_tail(command, packed, ())
        return _FunnelHead(ScriptCall(script, keys, args, command), packed)

    async def _in_one_trip(
        self,
        scripts: list[ScriptCall],
        commands: list[Command] | None = None,
        funnel: FunnelUpdate | None = None,
    ) -> list[Any]:
        """`_in_one_trip_replying`'s script replies."""
        replies, _ = await self._in_one_trip_replying(scripts, commands, funnel)
        return replies

    async def _in_one_trip_replying(
        self,
        scripts: list[ScriptCall],
        commands: list[Command] | None = None,
        funnel: FunnelUpdate | None = None,
    ) -> tuple[list[Any], list[Any]]:
        """Writes in one round trip, so under one fsync (each acknowledged write costs one),
        shared with the writes of concurrent requests (a group commit: coalesce.py).

        Scripts go by their SHA: given to a pipeline as scripts, redis-py would first ask the
        server whether it has them, every time, a round trip more. A server that lost one (a
        restart) answers NOSCRIPT without running it: it is loaded and called again. `funnel`
        counters are best effort: a failure there is logged and the rest stands (and they are
        not undone if the rest fails: a count more, never a disclosure). Returns the replies of
        `scripts`, and of `commands`."""
        calls = [*scripts, *([self._funnel_call(funnel)] if funnel else [])]
        results: list[Any] = []
        sent: list[Command] = [
            call.command or ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
            for call in calls
        ]
        async with unavailable_on_error():
            replies = await self._writes.execute([*sent, *(commands or [])])
            for call, reply in zip(calls, replies, strict=False):
                try:
                    # A reply as it came needs no call (a coroutine) to say so.
                    ok = not isinstance(reply, Exception)
                    results.append(reply if ok else await script_reply(call, reply))
                except redis.exceptions.RedisError as exc:
                    if funnel is None or call is not calls[-1]:
                        raise
                    logger.warning("funnel not counted: %s", type(exc).__name__)
            for reply in replies[len(calls) :]:
                if isinstance(reply, redis.exceptions.RedisError):
                    raise reply
        return results[: len(scripts)], replies[len(calls) :]


def stream_ms(seconds: float) -> str:
    """A stream id bound for a time: clamped to what Redis accepts (0 to 2**63 ms)."""
    if math.isnan(seconds):
        return "0"
    return str(int(min(max(seconds * 1000, 0), 2**63)))


def _check_confirmed(wait: ReplicaWait, replies: list[Any]) -> None:
    """StoreUnavailable unless a replica confirmed; a WAITAOF that only memory confirmed is
    logged (the replicas run without appendonly), as the durability warning would be."""
    if any(isinstance(reply, Exception) for reply in replies):
        raise StoreUnavailable("the wait for a replica failed")
    confirmed = wait.confirmed(replies)
    if confirmed is None:
        raise StoreUnavailable("no replica confirmed the write in time")
    if confirmed is Confirmed.IN_MEMORY and wait.commands[0][0] == "WAITAOF":
        logger.warning(
            "a replica holds the write in memory but fsynced none: turn on appendonly on the "
            "replicas, so a confirmed consent change survives their crash too"
        )


def _wrong_type(error: Exception) -> bool:
    """The error a key of another type gives: that record is unreadable, Redis is fine."""
    return isinstance(error, redis.exceptions.ResponseError) and str(error).startswith("WRONGTYPE")
