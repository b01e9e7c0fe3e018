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
from redis.asyncio import Redis
from redis.typing import EncodableT

from prefill.models import ConsentEvent, Customer
from prefill.store.keys import PREFIX, bucket_of, customer_index_key, customer_key
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
    """One customer, in one MULTI; False if its old record does not decode."""
    old = [legacy_key(customer_id, name) for name in ("customer", "consent", "consent:log")]
    async with client.pipeline(transaction=False) as reads:
        reads.hgetall(old[0])
        reads.hgetall(old[1])
        reads.lrange(old[2], 0, -1)
        record, state, log = await reads.execute()
    if not record:
        return True  # converted meanwhile
    try:
        fields = one_hash(record, state, log)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError):
        return False
    async with client.pipeline(transaction=True) as write:
        write.delete(customer_key(customer_id))
        write.hset(customer_key(customer_id), mapping=fields)
        write.sadd(customer_index_key(bucket_of(customer_id)), customer_id)
        write.delete(*old)
        await write.execute()
    return True
