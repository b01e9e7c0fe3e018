"""Erasure (Art. 17): every key of a customer deleted, and a pseudonymous tombstone left.

An erasure tombstone is keyed by a keyed HMAC of the customer id (pseudonyms.py): it outlives the
customer so that a re-import neither revives the erased customer's links nor re-grants consent
they had withdrawn, and it cannot be linked to the id without the service's secret keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import cast

import msgspec
import redis.exceptions

from prefill.models import ChangeEvent, ConsentAction, ConsentEvent, ConsentSource
from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import (
    audit_shard_key,
    bucket_of,
    customer_audit_key,
    customer_index_key,
    customer_key,
    customer_keys,
    feed_key_of,
    tombstone_key,
)
from prefill.store.records import EMAIL, GENERATION, state_purposes

_encoder = msgspec.json.Encoder()
_change_decoder = msgspec.json.Decoder(ChangeEvent)


class Tombstone(msgspec.Struct, frozen=True):
    """What survives an erasure, under a pseudonym: no name, no email, no id."""

    erased_at: float
    generation_floor: int
    withdrawn: list[str]
    pseudonym: str
    """Keyed HMAC of the customer id: how the audit names the erasure."""
    request: str = ""
    """Keyed HMAC of the erasing request's Idempotency-Key, if it sent one: its retry is
    answered as the first was."""

    def as_consent_state(self) -> dict[str, ConsentEvent]:
        """The withdrawals as a consent state, so an import cannot grant them again."""
        return {
            purpose: ConsentEvent(
                purpose=purpose,
                action=ConsentAction.WITHDRAWN,
                at=self.erased_at,
                source=ConsentSource.ADMIN,
                actor="erasure",
            )
            for purpose in self.withdrawn
        }


tombstone_decoder = msgspec.json.Decoder(Tombstone)


class ErasureStore(StoreBase):
    async def tombstones(self, customer_ids: Iterable[str]) -> dict[str, Tombstone]:
        """The erasure tombstones of those customer ids that have one."""
        ids = list(dict.fromkeys(customer_ids))
        candidates = [(cid, p) for cid in ids for p in self._pseudonyms.candidates(cid)]
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for _, pseudonym in candidates:
                pipe.get(tombstone_key(pseudonym))
            found = await pipe.execute()
        tombstones: dict[str, Tombstone] = {}
        for (customer_id, _), raw in zip(candidates, found, strict=True):
            if raw is not None and customer_id not in tombstones:
                tombstones[customer_id] = tombstone_decoder.decode(raw)
        return tombstones

    async def erase_customer(self, customer_id: str, request_id: str = "") -> Tombstone | None:
        """Delete every key of the customer, and their entries in the shared audit stream and
        the change feed; leave a pseudonymous tombstone. None if there was no such customer.
        Answered once a replica of each primary touched has it (durability.py): a retry with
        the same `request_id` after StoreUnavailable finds the tombstone and waits again."""
        request = self._pseudonyms.of(f"erasure-request:{request_id}") if request_id else ""
        tombstone = await self._delete_customer(customer_id, request)
        if tombstone is None and request:
            earlier = (await self.tombstones([customer_id])).get(customer_id)
            tombstone = earlier if earlier is not None and earlier.request == request else None
        if tombstone is not None:
            touched = [tombstone_key(tombstone.pseudonym), customer_key(customer_id)]
            touched.append(feed_key_of(customer_id))
            await self._confirm_replicated(touched)
        return tombstone

    async def _delete_customer(self, customer_id: str, request: str) -> Tombstone | None:
        bucket = bucket_of(customer_id)
        watched = [customer_key(customer_id), customer_audit_key(customer_id)]
        async with unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*watched)
                    fields = cast(
                        "dict[bytes, bytes]", await pipe.hgetall(customer_key(customer_id))
                    )
                    if EMAIL.encode() not in fields:
                        return None
                    generation = fields.get(GENERATION.encode(), b"0")
                    purposes = state_purposes(fields)
                    indexed = cast(
                        "list[tuple[bytes, object]]",
                        await pipe.xrange(customer_audit_key(customer_id)),
                    )
                    pseudonym = self._pseudonyms.of(customer_id)
                    tombstone = Tombstone(
                        erased_at=time.time(),
                        generation_floor=int(generation) + 1,
                        withdrawn=sorted(purposes),
                        pseudonym=pseudonym,
                        request=request,
                    )
                    # First, in a step of its own (another hash slot): an import racing this
                    # erasure is retried by the DEL below, and then finds the tombstone.
                    await self._redis.set(
                        tombstone_key(pseudonym),
                        _encoder.encode(tombstone),
                        ex=self._audit_retention_seconds,
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(*customer_keys(customer_id))
                    pipe.srem(customer_index_key(bucket), customer_id)
                    await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
            # The index shares its shard's ids (RECORD_AUDIT_SCRIPT).
            if indexed:
                await self._redis.xdel(
                    audit_shard_key(bucket), *(entry_id for entry_id, _ in indexed)
                )
        await self._remove_from_feed(customer_id)
        return tombstone

    async def _remove_from_feed(self, customer_id: str) -> None:
        # The customer's feed shard is short (a week); an erasure is rare: a scan of it is the
        # simple, exact way.
        # The erasure's own feed entry comes after this: consumers need the id to erase too.
        stream = feed_key_of(customer_id)
        async with unavailable_on_error():
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]", await self._redis.xrange(stream)
            )
            doomed = [
                entry_id
                for entry_id, fields in entries
                if _change_decoder.decode(fields[b"e"]).customer_id == customer_id
            ]
            if doomed:
                await self._redis.xdel(stream, *doomed)
