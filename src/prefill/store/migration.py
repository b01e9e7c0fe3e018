"""`prefill migrate`: data written under the key schema before buckets (`pf:{c:<id>}:…`, one
shared audit stream, `pf:{erased}:…`, `pf:{audit}:refused:<day>`, each campaign's funnel in a
slot of its own, the change feed in one stream) moved to the bucket layout of keys.py, and
customers written as several keys made one hash each (legacy.py). Idempotent and resumable:
each key is moved (DUMP, RESTORE, DEL) only while it is still there under its old name, a
customer's record last, and each customer made one hash in one MULTI, so a run cut off midway
is finished by the next. Run it with the service stopped, before starting a version that reads
the new layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import msgspec
import redis.exceptions

from prefill.models import AuditEntry, ChangeEvent
from prefill.store.catalog import CatalogStore
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import (
    CATALOG_VERSION,
    PREFIX,
    audit_shard_key,
    bucket_of,
    consent_requests_key,
    customer_audit_key,
    customer_index_key,
    customer_refusals_key,
    feed_key_of,
    funnel_counts_key,
    funnel_people_key,
    funnel_salt_key,
    refusal_counts_key,
    tombstone_key,
)
from prefill.store.legacy import convert_customers, legacy_key

OLD_AUDIT_STREAM = f"{PREFIX}{{audit}}:events"
OLD_FEED_STREAM = f"{PREFIX}{{feed}}:changes"
_OLD_CUSTOMER_KEYS: list[tuple[str, Callable[[str], str]]] = [
    # The record last: while it is there, the customer is not done.
    ("consent", lambda customer_id: legacy_key(customer_id, "consent")),
    ("consent:log", lambda customer_id: legacy_key(customer_id, "consent:log")),
    ("refused", customer_refusals_key),
    ("audit", customer_audit_key),
    ("requests", consent_requests_key),
    ("customer", lambda customer_id: legacy_key(customer_id, "customer")),
]
"""Into the several-keys layout, which `convert_customers` then makes one hash."""
_audit_decoder = msgspec.json.Decoder(AuditEntry)
_change_decoder = msgspec.json.Decoder(ChangeEvent)


class MigrationReport(msgspec.Struct, frozen=True):
    customers: int
    tombstones: int
    audit_entries: int
    refusal_days: int
    one_hash: int
    """Customers turned from several keys into one hash."""
    funnels: int = 0
    """Campaign funnels moved from their one slot into a bucket's shard."""
    feed_entries: int = 0
    """Change feed entries moved from the one stream into the customers' shards."""


class MigrationStore(CatalogStore):
    """The one-off move to the bucket layout (it spreads the catalog version as a change does)."""

    async def migrate_old_schema(self, progress: Callable[[str], None]) -> MigrationReport:
        """Move everything stored under the old schema; `progress` hears about each step."""
        async with unavailable_on_error():
            customers = 0
            old_records = self._redis.scan_iter(match=f"{PREFIX}{{c:*}}:customer", count=500)
            async for key in old_records:
                customer_id = cast("bytes", key).decode()[len(PREFIX) + 3 : -len("}:customer")]
                for suffix, new_key in _OLD_CUSTOMER_KEYS:
                    await self._move(f"{PREFIX}{{c:{customer_id}}}:{suffix}", new_key(customer_id))
                await self._redis.sadd(customer_index_key(bucket_of(customer_id)), customer_id)
                customers += 1
                if customers % 1000 == 0:
                    progress(f"{customers:,} customers moved")
            progress(f"{customers:,} customers moved")
            tombstones = 0
            async for key in self._redis.scan_iter(match=f"{PREFIX}{{erased}}:*", count=500):
                pseudonym = cast("bytes", key).decode().rpartition(":")[2]
                await self._move(cast("bytes", key).decode(), tombstone_key(pseudonym))
                tombstones += 1
            progress(f"{tombstones:,} erasure tombstones moved")
            entries = await self._move_audit_stream()
            progress(f"{entries:,} audit entries moved into their shards")
            days = 0
            async for key in self._redis.scan_iter(match=f"{PREFIX}{{audit}}:refused:*"):
                day = cast("bytes", key).decode().rpartition(":")[2]
                await self._move(cast("bytes", key).decode(), refusal_counts_key(day, 0))
                days += 1
            async for key in self._redis.scan_iter(match=f"{PREFIX}{{audit}}:rate:*"):
                await self._redis.delete(key)  # A rate window's count: minutes, not worth moving.
            progress(f"{days:,} days of refusal counts moved")
            funnels = await self._move_funnels()
            progress(f"{funnels:,} campaign funnels moved into a shard")
            changes = await self._move_feed()
            progress(f"{changes:,} change feed entries moved into their shards")
            conversion = await convert_customers(self._redis, progress)
            version = await self._redis.get(CATALOG_VERSION)
        if version is not None:
            await self._spread_version(int(version))
            progress("catalog version copied into every bucket")
        return MigrationReport(
            customers, tombstones, entries, days, conversion.converted, funnels, changes
        )

    async def _move(self, old: str, new: str) -> None:
        """One key to its new name, with its expiry; nothing if it is gone (moved already)."""
        dump = await self._redis.dump(old)
        if dump is None:
            return
        ttl = max(int(await self._redis.pttl(old)), 0)
        await self._redis.restore(new, ttl, dump, replace=True)
        await self._redis.delete(old)

    async def _move_funnels(self) -> int:
        """A campaign's funnel from its own slot (`pf:{funnel:<cmp>}:…`) whole into bucket 0's
        shard: its counts add up with the other shards'. Its people were counted with its salt,
        so someone counted there and counted again later in their own bucket's shard is
        counted twice, until the salt expires with the campaign's links."""
        campaigns: set[str] = set()
        async for key in self._redis.scan_iter(match=f"{PREFIX}{{funnel:*}}:*", count=500):
            old = cast("bytes", key).decode()
            tag, _, rest = old[len(PREFIX) + len("{funnel:") :].partition("}:")
            if rest == "counts":
                new = funnel_counts_key(tag, 0)
            elif rest == "salt":
                new = funnel_salt_key(tag, 0)
            elif rest.startswith("people:"):
                new = funnel_people_key(tag, 0, rest.removeprefix("people:"))
            else:
                continue
            await self._move(old, new)
            campaigns.add(tag)
        return len(campaigns)

    async def _move_feed(self) -> int:
        """Each change from the one feed stream into its customer's shard under its own id, in
        order, so consumers merging the shards by id see the same sequence. Consumer groups do
        not move: let consumers catch up before, and start them on the shards after
        (docs/change-feed.md)."""

        def shard_of(_: bytes, entry: bytes) -> str:
            return feed_key_of(_change_decoder.decode(entry).customer_id)

        return await self._move_entries(OLD_FEED_STREAM, shard_of)

    async def _move_audit_stream(self) -> int:
        """Each entry into its customer's shard under its own id (the customer's index holds
        the same id); an entry of no one into a shard of its id's bucket."""

        def shard_of(entry_id: bytes, entry: bytes) -> str:
            customer_id = _audit_decoder.decode(entry).customer_id
            return audit_shard_key(bucket_of(customer_id or entry_id.decode()))

        return await self._move_entries(OLD_AUDIT_STREAM, shard_of)

    async def _move_entries(self, old: str, shard_of: Callable[[bytes, bytes], str]) -> int:
        """Every entry of the stream `old` into the stream `shard_of(id, entry)` names, under
        its own id, then `old` deleted. An id the shard has already is an entry moved before."""
        moved, start = 0, "-"
        while True:
            batch = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self._redis.xrange(old, min=start, count=1000),
            )
            for entry_id, fields in batch:
                try:
                    await self._redis.xadd(
                        shard_of(entry_id, fields[b"e"]), {b"e": fields[b"e"]}, id=entry_id
                    )
                    moved += 1
                except redis.exceptions.ResponseError as exc:
                    if "equal or smaller" not in str(exc):
                        raise
            if len(batch) < 1000:
                break
            start = "(" + batch[-1][0].decode()
        await self._redis.delete(old)
        return moved
