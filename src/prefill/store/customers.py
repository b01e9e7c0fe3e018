"""Customer records: the hot path's read, bulk upserts, link generations, and listing.

A customer is one hash (records.py): the record, the link generation, `updated_at` (Unix seconds
of the last write by an import, the admin API or a form, which the retention job reads), and the
consent history with its derived state.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import cast

import msgspec
from redis.asyncio import RedisCluster
from redis.typing import EncodableT

from prefill.coalesce import Command
from prefill.models import ConsentEvent, Customer
from prefill.ratelimit import Window
from prefill.store.base import RateCount, StoreBase
from prefill.store.catalog import parse_version
from prefill.store.erasure import Tombstone, tombstone_decoder
from prefill.store.errors import CorruptRecord, unavailable_on_error
from prefill.store.keys import (
    BUCKETS,
    bucket_of,
    catalog_version_copy_key,
    customer_index_key,
    customer_key,
    tombstone_key,
)
from prefill.store.records import (
    EMAIL,
    GENERATION,
    HISTORY_COUNT,
    HISTORY_PREFIX,
    OVER_TOMBSTONE,
    UPDATED_AT,
    VERSION,
    StoredCustomer,
    decode_customer,
    encode_event,
    record_fields,
    state_field,
)
from prefill.store.scripts import ScriptCall, script_reply

BATCH_SIZE = 500
"""Customers per pipelined transaction of a bulk write: the round trip is paid once per batch,
and a WATCH conflict redoes little."""
ConsentDecision = Callable[[dict[str, dict[str, ConsentEvent]]], dict[str, list[ConsentEvent]]]
"""Current consent state per customer -> the consent events to record per customer."""


LISTING_STRIDE = 64
"""Buckets whose index sets one round trip of a listing reads."""

OVER_TOMBSTONE_FIELD = OVER_TOMBSTONE.encode()
_msgpack = msgspec.msgpack.Encoder()
EMAIL_FIELD = EMAIL.encode()
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError, IndexError)
"""What a hash that no longer decodes raises (records.py)."""


class LinkState(msgspec.Struct, frozen=True):
    """What one round trip tells about a link's customer."""

    catalog_version: int
    customer: Customer | None
    consents: dict[str, ConsentEvent]
    requests: Window | None = None
    """The link's rate count, when one was asked for."""


class SavedCustomers(msgspec.Struct, frozen=True):
    records: int = 0
    consent_events: int = 0


class CustomerChange(msgspec.Struct, frozen=True):
    """What writing one customer record did, or in a dry run would do."""

    customer_id: str
    status: str
    """`created`, `updated`, `unchanged`; `gone` (erased meanwhile) or `unreadable` (the stored
    record no longer decodes): left out."""
    fields: list[str] = msgspec.field(default_factory=list)
    """The record's fields whose value changes (for `updated`)."""
    consents: list[ConsentEvent] = msgspec.field(default_factory=list)
    """The consent events recorded for the customer."""


class CustomerState(msgspec.Struct, frozen=True):
    """A customer's record and consent as one round trip reads them; `customer` is None for an
    unknown id, `tombstone` set for an erased one."""

    customer: Customer | None
    consents: dict[str, ConsentEvent]
    tombstone: Tombstone | None = None
    unreadable: bool = False
    """The stored record or consent state no longer decodes (then `customer` is None)."""


class CustomerPage(msgspec.Struct, frozen=True):
    ids: list[str]
    cursor: int
    """Pass back to continue; 0 when the scan is complete."""


def _changed_fields(stored: Customer, new: Customer) -> list[str]:
    """The record fields whose value differs; the link generation is not the record's."""
    before, after = msgspec.structs.asdict(stored), msgspec.structs.asdict(new)
    return [name for name in after if name != "generation" and before[name] != after[name]]


def _decide_batch(
    customers: list[Customer],
    states: Mapping[str, CustomerState],
    consent_events: ConsentDecision,
    only_existing: bool,
) -> list[CustomerChange]:
    current = {
        cid: (state.tombstone.as_consent_state() if state.tombstone else {}) | state.consents
        for cid, state in states.items()
    }
    events = consent_events(current)
    changes = []
    for customer in customers:
        stored = states[customer.id].customer
        if states[customer.id].unreadable:
            changes.append(CustomerChange(customer.id, "unreadable"))
            continue
        if stored is None and only_existing:
            changes.append(CustomerChange(customer.id, "gone"))
            continue
        fields = _changed_fields(stored, customer) if stored else []
        status = "created" if stored is None else "updated" if fields else "unchanged"
        changes.append(CustomerChange(customer.id, status, fields, events.get(customer.id, [])))
    return changes


class CustomerStore(StoreBase):
    async def read_link_state(self, customer_id: str, rate: RateCount | None = None) -> LinkState:
        """Customer, consent and catalog version in one round trip, shared with concurrent
        requests' reads (not with writes: a read need not wait for an fsync); with `rate`, the
        link's request is counted in it too (ratelimit.py; its counters cost no fsync either).

        A problem with this customer's keys (wrong type, undecodable) is CorruptRecord, which
        callers treat as one more refusal; only a problem shared by everyone is StoreUnavailable.
        """
        call = self._rate_call(rate) if rate else None
        async with unavailable_on_error():
            commands: list[Command] = [
                ("GET", catalog_version_copy_key(bucket_of(customer_id))),
                ("HGETALL", customer_key(customer_id)),
            ]
            if call:
                commands.append(
                    ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
                )
            replies = await self._reads.execute(commands)
            version, fields = replies[:2]
            requests = Window(*await script_reply(call, replies[2])) if call else None
        catalog_version = parse_version(version)
        if isinstance(fields, Exception):
            raise CorruptRecord(customer_id)  # e.g. a key of the wrong type
        try:
            stored = decode_customer(customer_id, fields)
        except _DECODE_ERRORS as exc:
            raise CorruptRecord(customer_id) from exc
        return LinkState(
            catalog_version=catalog_version,
            customer=stored.customer,
            consents=stored.consents,
            requests=requests,
        )

    async def get_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer | None]:
        hashes = await self._hgetall_each(customer_ids, customer_key)
        return {cid: decode_customer(cid, fields).customer for cid, fields in hashes.items()}

    async def get_customer(self, customer_id: str) -> Customer | None:
        return (await self.get_customers([customer_id]))[customer_id]

    async def customer_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """Record, consent state and tombstone of each customer, in one pipelined round trip.
        A record that no longer decodes is said so (`unreadable`), for the caller to skip."""
        states, _ = await self._read_states(list(dict.fromkeys(customer_ids)))
        return states

    async def _read_states(
        self, ids: list[str]
    ) -> tuple[dict[str, CustomerState], dict[str, StoredCustomer]]:
        """`customer_states`, and what was stored as it was read (for a compare-and-set)."""
        if not ids:
            return {}, {}
        replies = await self._read_hashes([customer_key(customer_id) for customer_id in ids])
        # Only a customer created over an erased namesake (records.py: OVER_TOMBSTONE) can
        # have a tombstone beside their record: the others need no look-up. A hash without the
        # record's email is no record (a stray field written after an erasure): look it up.
        unsure = [
            cid
            for cid, fields in zip(ids, replies, strict=True)
            if not isinstance(fields, dict)
            or EMAIL_FIELD not in fields
            or OVER_TOMBSTONE_FIELD in fields
        ]
        tombstones = await self._tombstones_of(unsure)
        states: dict[str, CustomerState] = {}
        stored: dict[str, StoredCustomer] = {}
        for customer_id, fields in zip(ids, replies, strict=True):
            raw = tombstones.get(customer_id)
            tombstone = tombstone_decoder.decode(raw) if raw else None
            try:
                if isinstance(fields, Exception):
                    raise ValueError("a key of the wrong type")
                decoded = decode_customer(customer_id, fields)
            except _DECODE_ERRORS:
                states[customer_id] = CustomerState(None, {}, tombstone, unreadable=True)
                continue
            states[customer_id] = CustomerState(decoded.customer, decoded.consents, tombstone)
            stored[customer_id] = decoded
        return states, stored

    async def _tombstones_of(self, ids: list[str]) -> dict[str, bytes]:
        """The stored tombstones of those ids that have one, in one round trip."""
        candidates = [(cid, p) for cid in ids for p in self._pseudonyms.candidates(cid)]
        if not candidates:
            return {}
        keys = [tombstone_key(pseudonym) for _, pseudonym in candidates]
        found = await self._read_strings(keys)
        tombstones: dict[str, bytes] = {}
        for (customer_id, _), raw in zip(candidates, found, strict=True):
            if raw is not None:
                tombstones.setdefault(customer_id, raw)
        return tombstones

    async def save_customers(
        self,
        customers: list[Customer],
        consent_events: ConsentDecision,
        only_existing: bool = False,
    ) -> SavedCustomers:
        """Upsert customer records (each written, even when unchanged: a submission or an admin
        PUT is activity) with the consent events `consent_events(current states)` returns.
        With `only_existing`, a customer erased meanwhile is left out rather than brought back.
        Batches are not one transaction together (see `write_customer_batch`)."""
        records = events = 0
        for start in range(0, len(customers), BATCH_SIZE):
            changes = await self.write_customer_batch(
                customers[start : start + BATCH_SIZE],
                consent_events,
                only_existing=only_existing,
                write_unchanged=True,
            )
            if unreadable := [c.customer_id for c in changes if c.status == "unreadable"]:
                raise CorruptRecord(unreadable[0])
            records += sum(c.status != "gone" for c in changes)
            events += sum(len(c.consents) for c in changes)
        return SavedCustomers(records, events)

    async def write_customer_batch(
        self,
        customers: list[Customer],
        consent_events: ConsentDecision,
        *,
        only_existing: bool = False,
        write_unchanged: bool = False,
        dry_run: bool = False,
    ) -> list[CustomerChange]:
        """Upsert one batch of customers (ids unique within it) with the consent events
        `consent_events(current states)` decides, and say what changed for each.

        A new customer starts at generation 0 (or above an erased namesake's), an existing one
        keeps its counter (re-importing must not revive revoked links). A record equal to the
        stored one is not written unless `write_unchanged`: re-running an import changes
        nothing. Each customer is written by a compare-and-set script, all of them pipelined:
        a customer whose record or consent changed while the batch was being decided (an
        erasure, a withdrawal) is read and decided again, so it can never be written over.
        `dry_run` decides and writes nothing.
        """
        decided: dict[str, CustomerChange] = {}
        pending = customers
        while pending:
            # An erasure writes its tombstone before it deletes, so a retry sees it.
            states, stored = await self._read_states([c.id for c in pending])
            changes = _decide_batch(pending, states, consent_events, only_existing)
            if dry_run:
                return changes
            now = time.time()
            encoded: dict[ConsentEvent, bytes] = {}  # a batch's events are mostly alike
            writes = [
                (customer, change, call)
                for customer, change in zip(pending, changes, strict=True)
                if (
                    call := self._write_call(
                        customer, change, states, stored, now, write_unchanged, encoded
                    )
                )
            ]
            decided |= {change.customer_id: change for change in changes}
            # Nothing to write, nothing sent: no round trip and no fsync.
            written = await self._write_all([call for *_, call in writes]) if writes else []
            pending = [
                customer for (customer, *_), ok in zip(writes, written, strict=True) if not ok
            ]
        return [decided[customer.id] for customer in customers]

    def _write_call(
        self,
        customer: Customer,
        change: CustomerChange,
        states: Mapping[str, CustomerState],
        stored: Mapping[str, StoredCustomer],
        now: float,
        write_unchanged: bool,
        encoded: dict[ConsentEvent, bytes],
    ) -> ScriptCall | None:
        """The compare-and-set write `change` calls for (WRITE_CUSTOMER_SCRIPT), if any.
        `encoded`: each event already encoded for another customer's write."""
        generation = 0
        if change.status == "created":
            # An erased customer's old links must stay dead if the id comes back.
            floor = states[customer.id].tombstone
            generation = floor.generation_floor if floor else 0
        rewrite = change.status in ("created", "updated")
        if not (rewrite or change.consents or (change.status == "unchanged" and write_unchanged)):
            return None
        if not (rewrite or change.consents):
            # Only the activity time: a plain write, no new version for others to trip on.
            touch: list[EncodableT] = [int(now), EMAIL, UPDATED_AT]
            return ScriptCall(self._scripts.touch_customer, [customer_key(customer.id)], touch)
        seen = stored[customer.id]
        fields: dict[str, EncodableT] = {}
        removed: list[str] = []
        if rewrite:
            fields.update(record_fields(customer))
            removed = [field.decode() for field in seen.record if field.decode() not in fields]
            if change.status == "created" and states[customer.id].tombstone:
                fields[OVER_TOMBSTONE] = "1"
        if change.status == "created":
            fields[GENERATION] = generation
        # The history is appended where the stored hash ends it: the compare-and-set on the
        # write version holds the count as read (every append raises the version).
        count = seen.history
        events: list[EncodableT] = []
        for consent in change.consents:
            raw = encoded.get(consent)
            if raw is None:
                raw = encoded[consent] = encode_event(consent)
            events += [f"{HISTORY_PREFIX}{count}", raw]
            fields[state_field(consent.purpose)] = count
            count += 1
        if change.consents:
            fields[HISTORY_COUNT] = count
        fields[UPDATED_AT] = int(now)
        fields[VERSION] = int(seen.version or 0) + 1
        pairs = [item for pair in fields.items() for item in pair]
        args: list[EncodableT] = [
            seen.version,
            customer.id if change.status == "created" else "",
            _msgpack.encode((removed, pairs)),
            len(change.consents),
            *events,
        ]
        keys = [customer_key(customer.id), customer_index_key(bucket_of(customer.id))]
        return ScriptCall(self._scripts.write_customer, keys, args)

    async def _write_all(self, calls: list[ScriptCall]) -> list[bool]:
        """Whether each call wrote, in one round trip. On one Redis the customer writes go as
        one WRITE_CUSTOMERS command (a cluster's spread over slots: one each)."""
        if isinstance(self._redis, RedisCluster):
            return [bool(reply) for reply in await self._run_scripts(calls)]
        batch = [call for call in calls if call.script is self._scripts.write_customer]
        others = [call for call in calls if call.script is not self._scripts.write_customer]
        keys: list[str] = []
        args: list[EncodableT] = []
        for call in batch:
            keys += call.keys
            args += call.args
        batched = ScriptCall(self._scripts.write_customers, keys, args)
        written, *rest = await self._run_scripts([batched, *others])
        outcomes, done = iter(written), iter(rest)
        return [
            bool(next(outcomes) if call.script is self._scripts.write_customer else next(done))
            for call in calls
        ]

    async def bump_generation(self, customer_id: str) -> int | None:
        """Invalidate every link issued to the customer so far; None if unknown. One script,
        so a customer erased meanwhile is not resurrected as a bare counter."""
        async with unavailable_on_error():
            call = ScriptCall(self._scripts.bump_generation, [customer_key(customer_id)], [])
            generation = await self._write_durably(call)
        return None if generation is None else int(generation)

    async def list_customer_ids(self, cursor: int = 0, count: int = 100) -> CustomerPage:
        """About `count` customer ids from the buckets' index sets, bucket after bucket. The
        cursor is opaque to callers: it encodes the bucket and the position within its set."""
        bucket, position = cursor % BUCKETS, cursor // BUCKETS
        ids: list[str] = []
        async with unavailable_on_error():
            while bucket < BUCKETS and len(ids) < count:
                # Several buckets a round trip: most hold a few customers, or none yet.
                buckets = range(bucket, min(bucket + LISTING_STRIDE, BUCKETS))
                commands: list[Command] = [
                    (
                        "SSCAN",
                        customer_index_key(each),
                        position if each == bucket else 0,
                        "COUNT",
                        count,
                    )
                    for each in buckets
                ]
                replies = cast("list[tuple[int, list[bytes]]]", await self._commands(commands))
                for each, (next_position, members) in zip(buckets, replies, strict=True):
                    ids += [member.decode() for member in members]
                    bucket, position = each, int(next_position)
                    if position == 0:
                        bucket += 1
                    if position or len(ids) >= count:
                        break
        done = bucket >= BUCKETS
        return CustomerPage(ids=sorted(ids), cursor=0 if done else position * BUCKETS + bucket)

    async def each_customer_id(self, page_size: int) -> AsyncIterator[list[str]]:
        """Every customer id exactly once, a page at a time. A set scan may return an id twice
        (a set resized while it is scanned): the ids of the buckets still being listed are
        kept to drop repeats, so memory stays bounded by a few buckets and nothing is written.
        Pages go bucket after bucket: those below a page's lowest are listed completely."""
        cursor = 0
        recent: dict[int, set[str]] = {}
        while True:
            page = await self.list_customer_ids(cursor, page_size)
            buckets = [bucket_of(customer_id) for customer_id in page.ids]
            lowest = min(buckets, default=BUCKETS)
            recent = {bucket: ids for bucket, ids in recent.items() if bucket >= lowest}
            fresh = []
            for customer_id, bucket in zip(page.ids, buckets, strict=True):
                seen = recent.setdefault(bucket, set())
                if customer_id not in seen:
                    seen.add(customer_id)
                    fresh.append(customer_id)
            yield fresh
            if (cursor := page.cursor) == 0:
                return

    async def customer_updated_at(self, customer_ids: Iterable[str]) -> dict[str, float | None]:
        ids = list(customer_ids)
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hget(customer_key(customer_id), UPDATED_AT)
            found = await pipe.execute()
        return {
            cid: None if raw is None else float(raw) for cid, raw in zip(ids, found, strict=True)
        }

    async def stamp_updated_at(self, customer_ids: Iterable[str]) -> None:
        """Give records written before `updated_at` existed one now, so retention counts from
        here instead of never."""
        ids = list(customer_ids)
        if not ids:
            return
        now = int(time.time())
        await self._run_scripts(
            [
                ScriptCall(
                    self._scripts.stamp_updated_at,
                    [customer_key(customer_id)],
                    [now, EMAIL, UPDATED_AT],
                )
                for customer_id in ids
            ]
        )
