"""A small consumer of prefill's change feed: one JSON line per submission or consent change.

It reads the feed's 16 Redis Streams `pf:{feed:0}:changes` … `pf:{feed:15}:changes` with a
consumer group, so several copies share the work, merged by stream id (one customer's changes
are all in one stream, in order), and a change is acknowledged only after it has been handled:
one that was delivered but not acknowledged (the consumer crashed) is delivered again when the
consumer restarts. On one Redis it waits for all the streams in one blocking read; on a Redis
Cluster, whose streams are in different slots, it reads each in turn and sleeps a moment when
none has anything.

    .venv/bin/python examples/feed_consumer.py                      # the demo's embedded Redis
    .venv/bin/python examples/feed_consumer.py --redis-url redis://redis:6379/0 --group crm
    .venv/bin/python examples/feed_consumer.py --redis-url redis://node-1:6379/0 --redis-cluster

The event schema is documented in docs/change-feed.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import redis

STREAMS = [f"pf:{{feed:{shard}}}:changes" for shard in range(16)]
IDLE_SECONDS = 0.2
"""How long the cluster's reader sleeps when no stream had anything."""
BLOCK_MS = 5000
"""How long one blocking read waits for a change; the socket waits longer than that."""
SOCKET_TIMEOUT_SECONDS = BLOCK_MS / 1000 + 5
RETRY_SECONDS = 1.0
"""A lost Redis (a restart, a cluster failover) is tried again after this, for ever."""
LOST = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.RedisClusterException,
    redis.exceptions.ClusterError,
    redis.exceptions.TryAgainError,
)


def redis_url(args: argparse.Namespace) -> str:
    if args.redis_url:
        return str(args.redis_url)
    url_file = Path(args.data_dir) / "redis" / "redis.url"
    try:
        return url_file.read_text().strip()
    except FileNotFoundError:
        sys.exit(
            f"no prefill Redis runs in {args.data_dir}: start `prefill demo` or give --redis-url"
        )


def handle(change: dict[str, object]) -> None:
    """Where a CRM would update its record; here, print it."""
    print(json.dumps(change, ensure_ascii=False), flush=True)


Entries = list[tuple[str, bytes, dict[bytes, bytes]]]


def read(
    client: redis.Redis | redis.RedisCluster, args: argparse.Namespace, ids: dict[str, str]
) -> Entries:
    """The next entries of every stream from `ids` (stream -> "0" for this consumer's pending
    ones, ">" for new ones), oldest first across the streams."""
    if isinstance(client, redis.RedisCluster):
        answer = []
        for stream, start in ids.items():  # one slot each: one read each
            one = client.xreadgroup(args.group, args.consumer, {stream: start}, count=100)
            answer += one or []
        if not any(entries for _, entries in answer):
            time.sleep(IDLE_SECONDS)
    else:
        answer = client.xreadgroup(args.group, args.consumer, ids, count=100, block=BLOCK_MS) or []
    merged = [(s.decode(), i, f) for s, entries in answer for i, f in entries]
    return sorted(merged, key=lambda entry: tuple(map(int, entry[1].split(b"-"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("PREFILL_REDIS_URL"))
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        default=os.environ.get("PREFILL_REDIS_CLUSTER", "0").strip().lower() in ("1", "on"),
        help="--redis-url names one node of a Redis Cluster",
    )
    parser.add_argument("--data-dir", default=os.environ.get("PREFILL_DATA_DIR", "prefill-data"))
    parser.add_argument("--group", default="examples", help="consumer group (one per system)")
    parser.add_argument("--consumer", default=socket.gethostname(), help="this consumer's name")
    args = parser.parse_args()
    client: redis.Redis | redis.RedisCluster
    if args.redis_cluster:
        client = redis.RedisCluster.from_url(redis_url(args), socket_timeout=SOCKET_TIMEOUT_SECONDS)
    else:
        client = redis.Redis.from_url(redis_url(args), socket_timeout=SOCKET_TIMEOUT_SECONDS)
    while True:
        try:
            consume(client, args)
        except LOST as exc:
            # Unacknowledged changes are delivered again: start over from this consumer's own.
            print(
                f"Redis lost ({type(exc).__name__}); again in {RETRY_SECONDS:g} s", file=sys.stderr
            )
            time.sleep(RETRY_SECONDS)


def consume(client: redis.Redis | redis.RedisCluster, args: argparse.Namespace) -> None:
    """Create the group where missing, then handle changes until Redis is lost."""
    for stream in STREAMS:
        try:
            # "$": a new group starts with changes made from now on; its backlog stays its own.
            client.xgroup_create(stream, args.group, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
    print(
        f"reading {STREAMS[0]} … {STREAMS[-1]} as {args.group}/{args.consumer}",
        file=sys.stderr,
        flush=True,
    )
    ids = dict.fromkeys(
        STREAMS, "0"
    )  # First what was delivered to this consumer but never acknowledged.
    while True:
        entries = read(client, args, ids)
        if not entries and "0" in ids.values():
            ids = dict.fromkeys(STREAMS, ">")  # Then only new changes.
            continue
        for stream, entry_id, fields in entries:
            if fields:  # An entry erased after delivery comes back empty: nothing to handle.
                handle(json.loads(fields[b"e"]))
            client.xack(stream, args.group, entry_id)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends it without a traceback.
        main()
