"""The audit: disclosures and changes in streams sharded by bucket, refused links counted per day.

Refused links are counted per UTC day instead of streamed (under their customer when validly
signed, anonymously otherwise): anyone can send any number of them, and they must cost constant
space. Stream entries and counts are kept for the audit retention and trimmed by age, never by
count, so no amount of new entries can push a recent one out.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from typing import cast

import msgspec
from redis.typing import EncodableT

from prefill.coalesce import Command
from prefill.funnel import FunnelUpdate
from prefill.models import AuditEntry
from prefill.ratelimit import Window
from prefill.store.base import RateCount, StoreBase, stream_ms
from prefill.store.catalog import parse_version
from prefill.store.errors import unavailable_on_error
from prefill.store.feed import FEED_RETENTION_SECONDS
from prefill.store.keys import (
    BUCKETS,
    FEED_STREAMS,
    audit_shard_key,
    bucket_of,
    catalog_version_copy_key,
    customer_audit_key,
    customer_refusals_key,
    refusal_counts_key,
)
from prefill.store.scripts import ScriptCall

_encoder = msgspec.json.Encoder()
_audit_decoder = msgspec.json.Decoder(AuditEntry)


class AuditStore(StoreBase):
    async def record_audit(self, entry: AuditEntry, funnel: FunnelUpdate | None = None) -> None:
        """Append to the audit stream and to the customer's own index of it, dropping entries
        older than the retention: by age, so no amount of new entries can push a recent one
        out. Exact trimming: cheap (only what expired is removed), and testable. The `funnel`
        counters are written in the same round trip, best effort."""
        if entry.customer_id:
            # The shard of the customer's bucket: its index is in the same slot (keys.py).
            bucket = bucket_of(entry.customer_id)
            keys = [audit_shard_key(bucket), customer_audit_key(entry.customer_id)]
        else:
            keys = [audit_shard_key(secrets.randbelow(BUCKETS))]
        args: list[EncodableT] = [
            _encoder.encode(entry),
            self._oldest_kept_id(),
            self._audit_retention_seconds,
        ]
        await self._in_one_trip([ScriptCall(self._scripts.record_audit, keys, args)], funnel=funnel)

    async def count_refusal(
        self,
        day: str,
        channel: str,
        cause: str,
        customer_id: str | None = None,
        funnel: FunnelUpdate | None = None,
        *,
        read_catalog_version: bool = False,
    ) -> int | None:
        """Count a refused link per day: under its customer when the link was validly signed
        (so the count goes with the customer's data), else in the day's anonymous counts.
        The `funnel` counters are written in the same round trip, best effort. With
        `read_catalog_version`, the catalog's version is read in it too, and returned."""
        bucket = secrets.randbelow(BUCKETS)
        key, field = (
            (customer_refusals_key(customer_id), f"{day}:{channel}:{cause}")
            if customer_id is not None
            else (refusal_counts_key(day, bucket), f"{channel}:{cause}")
        )
        count: list[Command] = [
            ("HINCRBY", key, field, 1),
            ("EXPIRE", key, self._audit_retention_seconds),
        ]
        if read_catalog_version:
            count.append(("GET", catalog_version_copy_key(bucket)))
        _, replies = await self._in_one_trip_replying([], count, funnel)
        return parse_version(replies[2]) if read_catalog_version else None

    async def count_unsigned_refusal(
        self, day: str, channel: str, cause: str, rate: RateCount
    ) -> tuple[Window, int]:
        """`count_refusal` for a link without a valid signature, counted against its client
        address's limit in the same command (over the limit, the refusal is not counted), and
        the catalog's version, read in the same round trip."""
        call = self._rate_call(rate, (day, f"{channel}:{cause}"))
        copy = catalog_version_copy_key(secrets.randbelow(BUCKETS))
        (reply,), (version,) = await self._in_one_trip_replying([call], [("GET", copy)])
        return Window(*reply), parse_version(version)

    async def customer_refusals(self, customer_id: str) -> dict[str, int]:
        """`<day>:<channel>:<cause>` -> count, for one customer's refused links."""
        return await self._counts([customer_refusals_key(customer_id)])

    async def refusal_counts(self, day: str) -> dict[str, int]:
        """`<channel>:<cause>` -> count, for one day's unsigned refused links (the sum of the
        buckets' counts)."""
        return await self._counts([refusal_counts_key(day, b) for b in range(BUCKETS)])

    async def _counts(self, keys: list[str]) -> dict[str, int]:
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            hashes = cast("list[dict[bytes, bytes]]", await pipe.execute())
        total: Counter[str] = Counter()
        for raw in hashes:
            total.update({field.decode(): int(value) for field, value in raw.items()})
        return dict(total)

    async def audit_entries(
        self,
        count: int = 1000,
        customer_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[AuditEntry]:
        """Audit entries between `since` and `until` (Unix seconds), newest first: everyone's,
        merged from the shards by stream id, or one customer's from their own index."""
        keys = (
            [audit_shard_key(bucket) for bucket in range(BUCKETS)]
            if customer_id is None
            else [customer_audit_key(customer_id)]
        )
        newest = "+" if until is None else stream_ms(until)
        oldest = "-" if since is None else stream_ms(since)
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.xrevrange(key, max=newest, min=oldest, count=count)
            shards = cast("list[list[tuple[bytes, dict[bytes, bytes]]]]", await pipe.execute())
        # Shards' ids tie within a millisecond: the entry's own time orders those.
        entries = [
            (_stream_id(entry_id), _audit_decoder.decode(fields[b"e"]))
            for shard in shards
            for entry_id, fields in shard
        ]
        entries.sort(key=lambda item: (item[0][0], item[1].at, item[0][1]), reverse=True)
        return [entry for _, entry in entries[:count]]

    async def trim_streams(self) -> None:
        """Apply the age limits to the shared streams even when nothing new is written."""
        feed_oldest = f"{int((time.time() - FEED_RETENTION_SECONDS) * 1000)}-0"
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for bucket in range(BUCKETS):
                pipe.xtrim(audit_shard_key(bucket), minid=self._oldest_kept_id(), approximate=False)
            for stream in FEED_STREAMS:
                pipe.xtrim(stream, minid=feed_oldest, approximate=False)
            await pipe.execute()


def _stream_id(raw: bytes) -> tuple[int, int]:
    """A stream id as numbers, the order Redis gives it: "1700000000000-2" -> (1700..., 2)."""
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq)
