"""Customers written as several keys (`…:c:<id>:customer` with the record as JSON, `:consent`,
`:consent:log`) turned into the one hash of records.py, for `prefill migrate`.

Each customer is converted in one MULTI (its keys share a slot): the hash written whole and the
old keys deleted together, so a run cut off midway leaves every customer either done or as it
was, and the next run finishes the rest. A customer whose old record no longer decodes is left
as it was and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, cast

import msgspec
import redis.exceptions
from redis.asyncio import Redis
from redis.typing import EncodableT

from prefill.models import ConsentEvent, Customer
from prefill.store.keys import (
    PREFIX,
    bucket_of,
    consent_requests_key,
    customer_index_key,
    customer_key,
)
from prefill.store.records import (
    GENERATION,
    HISTORY_COUNT,
    HISTORY_PREFIX,
    OVER_TOMBSTONE,
    UPDATED_AT,
    VERSION,
    encode_event,
    record_fields,
    state_field,
)

_customer_decoder = msgspec.json.Decoder(Customer)
_event_decoder = msgspec.json.Decoder(ConsentEvent)


def legacy_key(customer_id: str, name: str) -> str:
    """A key of the several-keys layout: `customer`, `consent` or `consent:log`."""
    return f"{customer_key(customer_id)}:{name}"


LEGACY_RECORDS = f"{PREFIX}{{b:*}}:c:*:customer"
"""The pattern that finds customers still in several keys."""


class Conversion(NamedTuple):
    converted: int
    unreadable: int


def one_hash(
    record: dict[bytes, bytes], state: dict[bytes, bytes], log: list[bytes]
) -> dict[EncodableT, EncodableT]:
    """The one hash of a customer stored as several keys. The state points at the latest
    history entry of each purpose; a state the history lacks is appended to it."""
    customer = _customer_decoder.decode(record[b"record"])
    events = [_event_decoder.decode(raw) for raw in log]
    for raw in state.values():
        event = _event_decoder.decode(raw)
        if event not in events:
            events.append(event)
    fields: dict[EncodableT, EncodableT] = {}
    fields.update(record_fields(customer))
    fields[GENERATION] = int(record.get(b"generation", b"0"))
    if b"updated_at" in record:
        fields[UPDATED_AT] = int(float(record[b"updated_at"]))
    for index, event in enumerate(events):
        fields[f"{HISTORY_PREFIX}{index}"] = encode_event(event)
        fields[state_field(event.purpose)] = index  # the latest of its purpose wins
    fields[HISTORY_COUNT] = len(events)
    fields[VERSION] = 1
    fields[OVER_TOMBSTONE] = 1  # Not known here: bulk writes keep looking tombstones up.
    return fields


async def convert_customers(client: Redis, progress: Callable[[str], None]) -> Conversion:
    """Every customer still in several keys into one hash; `progress` hears how many."""
    converted = unreadable = 0
    async for key in client.scan_iter(match=LEGACY_RECORDS, count=500):
        name = cast("bytes", key).decode()
        customer_id = name.removesuffix(":customer").partition("}:c:")[2]
        if not await _convert(client, customer_id):
            unreadable += 1
            continue
        converted += 1
        if converted % 1000 == 0:
            progress(f"{converted:,} customers made one hash")
    progress(f"{converted:,} customers made one hash")
    if unreadable:
        progress(f"{unreadable:,} customers left in several keys: their record does not decode")
    return Conversion(converted, unreadable)


async def _convert(client: Redis, customer_id: str) -> bool:
    """One customer, in one MULTI; False if its old record does not decode. The old keys are
    watched: a consent change an instance still on the old layout records meanwhile makes the
    conversion start again rather than be lost."""
    old = [legacy_key(customer_id, name) for name in ("customer", "consent", "consent:log")]
    requests = consent_requests_key(customer_id)
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(*old, requests)
                record = cast("dict[bytes, bytes]", await pipe.hgetall(old[0]))
                if not record:
                    return True  # converted meanwhile
                state = cast("dict[bytes, bytes]", await pipe.hgetall(old[1]))
                log = cast("list[bytes]", await pipe.lrange(old[2], 0, -1))
                outcomes = cast("dict[bytes, bytes]", await pipe.hgetall(requests))
                try:
                    fields = one_hash(record, state, log)
                    replies = stored_outcomes(outcomes)
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError):
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.delete(customer_key(customer_id))
                pipe.hset(customer_key(customer_id), mapping=fields)
                pipe.sadd(customer_index_key(bucket_of(customer_id)), customer_id)
                if replies:
                    pipe.hset(requests, mapping=replies)  # HSET keeps the key's expiry
                pipe.delete(*old)
                await pipe.execute()
                return True
            except redis.exceptions.WatchError:
                continue


def stored_outcomes(outcomes: dict[bytes, bytes]) -> dict[EncodableT, EncodableT]:
    """The consent requests' stored outcomes (`fingerprint|status|event`) whose event is still
    JSON, with it in the one hash's encoding, so a retry after the migration is replayed."""
    converted: dict[EncodableT, EncodableT] = {}
    for field, value in outcomes.items():
        parts = value.split(b"|", 2)
        if len(parts) == 3 and parts[2].startswith(b"{"):
            event = encode_event(_event_decoder.decode(parts[2]))
            converted[field] = b"|".join([parts[0], parts[1], event])
    return converted
