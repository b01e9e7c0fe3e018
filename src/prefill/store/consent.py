"""Consent: the state per purpose (derived), its append-only history, and idempotent writes.

Both live in the customer's hash (records.py). The state is written together with its history
entry in one script, so the derived state never disagrees with the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import msgspec
from redis.typing import EncodableT

from prefill.models import ConsentEvent
from prefill.store.base import StoreBase
from prefill.store.errors import RequestConflict, unavailable_on_error
from prefill.store.keys import consent_requests_key, customer_key
from prefill.store.records import (
    action_code,
    decode_customer,
    decode_event,
    decode_history,
    encode_event,
    state_field,
)
from prefill.store.scripts import ScriptCall

REQUEST_RETENTION_SECONDS = 86_400
"""A client may retry a consent write with the same request id for a day."""


class ConsentOutcome(msgspec.Struct, frozen=True):
    """What a consent write did: `recorded` a new event, found the state `unchanged` (nothing
    appended), `replayed` an earlier request with the same id, or found no such customer."""

    status: str
    event: ConsentEvent | None
    first_status: str = ""
    """For a replay: what the first request did."""
    published: bool = True
    """For a replay: whether the first request's audit and feed entries were written."""


class ConsentStore(StoreBase):
    async def current_consents(
        self, customer_ids: Iterable[str]
    ) -> dict[str, dict[str, ConsentEvent]]:
        hashes = await self._hgetall_each(customer_ids, customer_key)
        return {cid: decode_customer(cid, fields).consents for cid, fields in hashes.items()}

    async def consent_history(self, customer_id: str) -> list[ConsentEvent]:
        async with unavailable_on_error():
            fields = await self._redis.hgetall(customer_key(customer_id))
        return decode_history(cast("dict[bytes, bytes]", fields))

    async def record_consent(
        self, customer_id: str, event: ConsentEvent, request_id: str = "", fingerprint: str = ""
    ) -> ConsentOutcome:
        """Append `event` unless it repeats the current state. With a request id, a retry of
        the same request returns the first outcome; a different request under the same id
        raises RequestConflict. The answer comes after Redis has applied (and, with
        `appendfsync always`, fsynced) the write."""
        keys = [customer_key(customer_id), consent_requests_key(customer_id)]
        args: list[EncodableT] = [
            encode_event(event),
            state_field(event.purpose),
            action_code(event.action),
            event.notice_version,
            request_id,
            fingerprint,
            REQUEST_RETENTION_SECONDS,
            int(event.at),
        ]
        async with unavailable_on_error():
            call = ScriptCall(self._scripts.record_consent, keys, args)
            status, payload, *published = await self._write_durably(call)
        status = status.decode()
        if status == "unknown_customer":
            return ConsentOutcome(status, None)
        if status == "replayed":
            stored_fingerprint, first_status, payload = payload.split(b"|", 2)
            if stored_fingerprint.decode() != fingerprint:
                raise RequestConflict(request_id)
            return ConsentOutcome(
                status,
                decode_event(payload),
                first_status=first_status.decode(),
                published=bool(published[0]),
            )
        return ConsentOutcome(status, decode_event(payload))

    async def mark_published(self, customer_id: str, request_id: str) -> None:
        """The audit and feed entries of a request's consent event are written."""
        async with unavailable_on_error():
            await self._redis.hset(consent_requests_key(customer_id), f"{request_id}#published", 1)
