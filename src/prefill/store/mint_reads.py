"""What a mint reads of each customer: the fields its links and merge columns use, and the
state of one consent purpose, not the whole hash.

A bulk mint reads every customer once; decoding and validating each whole record and history
(`customer_states`) was most of its reading. The fields it uses are validated as the record's
own are (models.py): a hash altered by hand in one of them is still unreadable, not minted.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import RedisCluster

from prefill.models import DEFAULT_LOCALE, Customer, Email, Id, Locale, ShortText
from prefill.store.customers import CustomerState, CustomerStore
from prefill.store.erasure import tombstone_decoder
from prefill.store.keys import customer_key
from prefill.store.records import (
    EMAIL,
    GENERATION,
    HISTORY_PREFIX,
    decode_event,
    record_tags,
    state_field,
)
from prefill.store.scripts import ScriptCall

MINT_FIELDS = ["first_name", "last_name", "locale", "owner_id"]
"""The record's fields a mint uses besides the email: names and language for the merge
columns, the owner for the contact person who signs the links."""
_FIELDS = [EMAIL, *record_tags(MINT_FIELDS), GENERATION]


class _MintRecord(msgspec.Struct, array_like=True, frozen=True):
    """The stored fields a mint uses, with the record's own constraints."""

    email: Email
    first_name: ShortText
    last_name: ShortText
    locale: Locale
    owner_id: Id | None


_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError, IndexError)


class MintReadStore(CustomerStore):
    async def mint_states(self, customer_ids: list[str], purpose: str) -> dict[str, CustomerState]:
        """Each customer's state as `customer_states` gives it, in one round trip, but with
        only the record's fields a mint uses (the others at their defaults) and the consent
        state of `purpose` alone."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return {}
        keys = [customer_key(customer_id) for customer_id in ids]
        args: list[Any] = [HISTORY_PREFIX, *_FIELDS, state_field(purpose)]
        script = self._scripts.read_for_mint
        if isinstance(self._redis, RedisCluster):  # each key in a slot of its own
            replies = await self._run_scripts([ScriptCall(script, [key], args) for key in keys])
            replies = [reply[0] for reply in replies]
        else:
            (replies,) = await self._run_scripts([ScriptCall(script, keys, args)])
        states = {cid: _state(cid, reply, purpose) for cid, reply in zip(ids, replies, strict=True)}
        # Only an id without a record may be an erased one: it alone is looked up.
        missing = [cid for cid, state in states.items() if state.customer is None]
        for customer_id, raw in (await self._tombstones_of(missing)).items():
            state = states[customer_id]
            if not state.unreadable:
                states[customer_id] = CustomerState(None, {}, tombstone_decoder.decode(raw))
        return states


def _state(customer_id: str, reply: list[bytes | None] | None, purpose: str) -> CustomerState:
    if reply is None:  # a key of another type
        return CustomerState(None, {}, unreadable=True)
    email, first, last, locale, owner, generation, event = reply
    try:
        consents = {purpose: decode_event(event)} if event is not None else {}
        if email is None:
            return CustomerState(None, consents)
        record = msgspec.convert(
            [
                email.decode(),
                first.decode() if first else "",
                last.decode() if last else "",
                locale.decode() if locale else DEFAULT_LOCALE,
                owner.decode() if owner else None,
            ],
            _MintRecord,
        )
        customer = Customer(
            id=customer_id,
            email=record.email,
            first_name=record.first_name,
            last_name=record.last_name,
            locale=record.locale,
            owner_id=record.owner_id,
            generation=int(generation or b"0"),
        )
    except _DECODE_ERRORS:
        return CustomerState(None, {}, unreadable=True)
    return CustomerState(customer, consents)
