"""Customer records: the hot path's read, bulk upserts, link generations, and listing.

The customer hash also holds `updated_at` (Unix seconds of the last write by an import, the admin
API or a form), which the retention job reads. The `generation` field is the authority for a
customer's link counter; the copy inside `record` is ignored on read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import cast

import msgspec
import redis.exceptions
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from prefill.coalesce import Command
from prefill.models import ConsentEvent, Customer
from prefill.ratelimit import Window
from prefill.store.base import RateCount, StoreBase
from prefill.store.catalog import parse_version
from prefill.store.consent import decode_consents
from prefill.store.erasure import Tombstone, tombstone_decoder
from prefill.store.errors import CorruptRecord, unavailable_on_error
from prefill.store.keys import (
    CATALOG_VERSION,
    consent_key,
    consent_log_key,
    customer_key,
    tombstone_key,
)
from prefill.store.scripts import script_reply

BATCH_SIZE = 500
"""Customers per pipelined transaction of a bulk write: the round trip is paid once per batch,
and a WATCH conflict redoes little."""
ConsentDecision = Callable[[dict[str, dict[str, ConsentEvent]]], dict[str, list[ConsentEvent]]]
"""Current consent state per customer -> the consent events to record per customer."""

_encoder = msgspec.json.Encoder()
_customer_decoder = msgspec.json.Decoder(Customer)


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


def _decode_customer(fields: Mapping[bytes, bytes]) -> Customer | None:
    record = fields.get(b"record")
    if record is None:
        return None
    customer = _customer_decoder.decode(record)
    return msgspec.structs.replace(customer, generation=int(fields.get(b"generation", b"0")))


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
                ("GET", CATALOG_VERSION),
                ("HGETALL", customer_key(customer_id)),
                ("HGETALL", consent_key(customer_id)),
            ]
            if call:
                commands.append(
                    ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
                )
            replies = await self._reads.execute(commands)
            version, customer_fields, consent_fields = replies[:3]
            requests = Window(*await script_reply(call, replies[3])) if call else None
        catalog_version = parse_version(version)
        if isinstance(customer_fields, Exception) or isinstance(consent_fields, Exception):
            raise CorruptRecord(customer_id)  # e.g. a key of the wrong type
        try:
            return LinkState(
                catalog_version=catalog_version,
                customer=_decode_customer(customer_fields),
                consents=decode_consents(consent_fields),
                requests=requests,
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise CorruptRecord(customer_id) from exc

    async def get_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer | None]:
        hashes = await self._hgetall_each(customer_ids, customer_key)
        return {cid: _decode_customer(fields) for cid, fields in hashes.items()}

    async def get_customer(self, customer_id: str) -> Customer | None:
        return (await self.get_customers([customer_id]))[customer_id]

    async def customer_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """Record, consent state and tombstone of each customer, in one pipelined round trip.
        A record that no longer decodes is said so (`unreadable`), for the caller to skip."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return {}
        candidates = [(cid, p) for cid in ids for p in self._pseudonyms.candidates(cid)]
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hgetall(customer_key(customer_id))
                pipe.hgetall(consent_key(customer_id))
            # Tombstones share one hash tag: one MGET for the whole batch.
            pipe.mget([tombstone_key(pseudonym) for _, pseudonym in candidates])
            *replies, found = await pipe.execute(raise_on_error=False)
        if isinstance(found, Exception):
            raise found  # Tombstones are everyone's: without them nothing can be decided.
        tombstones: dict[str, bytes] = {}
        for (customer_id, _), raw in zip(candidates, found, strict=True):
            if raw is not None:
                tombstones.setdefault(customer_id, raw)
        states: dict[str, CustomerState] = {}
        for index, customer_id in enumerate(ids):
            raw = tombstones.get(customer_id)
            tombstone = tombstone_decoder.decode(raw) if raw else None
            try:
                customer_fields, consent_fields = replies[2 * index], replies[2 * index + 1]
                if isinstance(customer_fields, Exception) or isinstance(consent_fields, Exception):
                    raise ValueError("a key of the wrong type")
                states[customer_id] = CustomerState(
                    customer=_decode_customer(customer_fields),
                    consents=decode_consents(consent_fields),
                    tombstone=tombstone,
                )
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                states[customer_id] = CustomerState(None, {}, tombstone, unreadable=True)
        return states

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
        nothing. The batch is one transaction under WATCH of its customers' records and consent
        state: an erasure or a withdrawal that lands while the batch is being decided makes the
        batch decide again, so it can never be written over. `dry_run` decides and writes
        nothing.
        """
        if not customers:
            return []  # (WATCH without keys is an error.)
        ids = [c.id for c in customers]
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if not dry_run:
                        await pipe.watch(
                            *(customer_key(i) for i in ids), *(consent_key(i) for i in ids)
                        )
                    # Read on another connection: WATCH still sees any write made after it. An
                    # erasure writes its tombstone before it deletes, so a retry sees it.
                    states = await self.customer_states(ids)
                    changes = _decide_batch(customers, states, consent_events, only_existing)
                    if dry_run:
                        return changes
                    pipe.multi()  # type: ignore[no-untyped-call]
                    # Nothing to write, nothing sent: no transaction and no fsync (leaving the
                    # block discards the empty MULTI and the WATCH).
                    if self._queue_batch(pipe, customers, states, changes, write_unchanged):
                        await pipe.execute()
                    return changes
                except redis.exceptions.WatchError:
                    continue

    def _queue_batch(
        self,
        pipe: Pipeline,
        customers: list[Customer],
        states: Mapping[str, CustomerState],
        changes: list[CustomerChange],
        write_unchanged: bool,
    ) -> bool:
        """Queue the writes `changes` call for (a few commands per customer: bulk imports are
        bound by them); False if there are none."""
        now = time.time()
        queued = False
        for customer, change in zip(customers, changes, strict=True):
            fields: dict[FieldT, EncodableT] = {}
            if change.status == "created":
                # An erased customer's old links must stay dead if the id comes back. (WATCH
                # guarantees the record is still absent when this runs.)
                floor = states[customer.id].tombstone
                fields["generation"] = floor.generation_floor if floor else 0
            if change.status in ("created", "updated") or (
                change.status == "unchanged" and write_unchanged
            ):
                fields["record"] = _encoder.encode(customer)
            if change.consents:
                encoded = [_encoder.encode(event) for event in change.consents]
                pipe.rpush(consent_log_key(customer.id), *encoded)
                pipe.hset(
                    consent_key(customer.id),
                    mapping={
                        e.purpose: raw for e, raw in zip(change.consents, encoded, strict=True)
                    },
                )
            if fields or change.consents:
                pipe.hset(customer_key(customer.id), mapping=fields | {"updated_at": now})
                queued = True
        return queued

    async def bump_generation(self, customer_id: str) -> int | None:
        """Invalidate every link issued to the customer so far; None if unknown. One script,
        so a customer erased meanwhile is not resurrected as a bare counter."""
        async with unavailable_on_error():
            generation = await self._scripts.bump_generation(keys=[customer_key(customer_id)])
        return None if generation is None else int(generation)

    async def list_customer_ids(self, cursor: int = 0, count: int = 100) -> CustomerPage:
        """One step of a SCAN over customer records (no index to keep consistent)."""
        pattern = customer_key("*")
        async with unavailable_on_error():
            next_cursor, keys = await self._redis.scan(cursor, match=pattern, count=count)
        prefix, suffix = customer_key("").encode().split(b"}")
        ids = sorted(k[len(prefix) : -len(suffix) - 1].decode() for k in cast("list[bytes]", keys))
        return CustomerPage(ids=ids, cursor=int(next_cursor))

    async def customer_updated_at(self, customer_ids: Iterable[str]) -> dict[str, float | None]:
        ids = list(customer_ids)
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hget(customer_key(customer_id), "updated_at")
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
        now = time.time()
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hsetnx(customer_key(customer_id), "updated_at", now)
            await pipe.execute()
