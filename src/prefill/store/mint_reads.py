"""What a mint reads of each customer: the fields its links and merge columns use, and the
state of one consent purpose, not the whole hash.

A bulk mint reads every customer once; decoding and validating each whole record and history
(`customer_states`) was most of its reading. The fields it uses are validated as the record's
own are (models.py): a hash altered by hand in one of them is still unreadable, not minted.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from redis.asyncio import RedisCluster

from prefill.models import (
    DEFAULT_LOCALE,
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    ID_PATTERN,
    SHORT_TEXT_MAX_LENGTH,
    SUPPORTED_LOCALES,
    ConsentEvent,
    Customer,
    Email,
    Id,
    Locale,
    ShortText,
)
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
from prefill.text import PLAIN_TEXT_PATTERN

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
        states = _states(ids, replies, purpose)
        # Only an id without a record may be an erased one: it alone is looked up.
        missing = [cid for cid, state in states.items() if state.customer is None]
        for customer_id, raw in (await self._tombstones_of(missing)).items():
            state = states[customer_id]
            if not state.unreadable:
                states[customer_id] = CustomerState(None, {}, tombstone_decoder.decode(raw))
        return states


def _states(
    ids: list[str], replies: list[list[bytes | None] | None], purpose: str
) -> dict[str, CustomerState]:
    texts = [_text(reply) for reply in replies]
    # Checked a field at a time over the whole batch, which nearly always passes; a batch
    # that does not is checked a record at a time, to find the records that fail.
    valid = _all_valid([text[0] for text in texts if text is not None and text[0]])
    # Customers imported together share their consent event byte for byte (an import
    # records a batch's at one time): each distinct one is decoded once. Events are frozen.
    events: dict[bytes, ConsentEvent] = {}
    return {
        customer_id: _state(customer_id, text, purpose, valid, events)
        for customer_id, text in zip(ids, texts, strict=True)
    }


_Text = tuple[list[Any], bytes | None, bytes | None]
"""A customer's reply with its record's fields as text: ([email, first name, last name,
locale, owner], or [] without an email: no record), the generation and the consent event.
A plain tuple: a named one costs a Python-level constructor call a customer."""


def _text(reply: list[bytes | None] | None) -> _Text | None:
    """None for a reply that cannot be a customer's: a key of another type, or bytes that
    are no UTF-8 text."""
    if reply is None:
        return None
    email, first, last, locale, owner, generation, event = reply
    if email is None:
        return [], generation, event
    try:
        record = [
            email.decode(),
            first.decode() if first else "",
            last.decode() if last else "",
            locale.decode() if locale else DEFAULT_LOCALE,
            owner.decode() if owner else None,
        ]
    except UnicodeDecodeError:
        return None
    return record, generation, event


def _state(
    customer_id: str,
    text: _Text | None,
    purpose: str,
    valid: bool,
    events: dict[bytes, ConsentEvent],
) -> CustomerState:
    """`events`: the batch's consent events decoded so far, by their bytes."""
    if text is None:
        return CustomerState(None, {}, unreadable=True)
    record, generation, event = text
    try:
        consents = {}
        if event is not None:
            if (decoded := events.get(event)) is None:
                decoded = events[event] = decode_event(event)
            consents[purpose] = decoded
        if not record:
            return CustomerState(None, consents)
        email, first, last, locale, owner = (
            record if valid else msgspec.structs.astuple(msgspec.convert(record, _MintRecord))
        )
        customer = Customer(
            id=customer_id,
            email=email,
            first_name=first,
            last_name=last,
            locale=locale,
            owner_id=owner,
            generation=int(generation or b"0"),
        )
    except _DECODE_ERRORS:
        return CustomerState(None, {}, unreadable=True)
    return CustomerState(customer, consents)


def _each_line(pattern: str) -> re.Pattern[str]:
    """An anchored pattern (^...$) that matches no line break, for every line of a text."""
    return re.compile(f"(?:{pattern.removeprefix('^').removesuffix('$')}\n)*")


_EMAILS = _each_line(EMAIL_PATTERN)
_TEXTS = _each_line(PLAIN_TEXT_PATTERN)
_IDS = _each_line(ID_PATTERN)


def _all_valid(records: list[list[Any]]) -> bool:
    """Whether every record meets `_MintRecord`'s constraints (models.py's), a regex scan a
    field for the batch rather than one a value (one a value was most of the batch's read)."""
    emails = [record[0] for record in records]
    texts = [record[1] for record in records] + [record[2] for record in records]
    owners = [record[4] for record in records if record[4] is not None]
    return (
        max(map(len, emails), default=0) <= EMAIL_MAX_LENGTH
        and max(map(len, texts), default=0) <= SHORT_TEXT_MAX_LENGTH
        and all(record[3] in SUPPORTED_LOCALES for record in records)
        and _lines_match(_EMAILS, emails)
        and _lines_match(_TEXTS, texts)
        and _lines_match(_IDS, owners)
    )


def _lines_match(each_line: re.Pattern[str], values: list[str]) -> bool:
    text = "\n".join(values) + "\n" if values else ""
    # A value with a line break of its own would pass as two lines: it fails instead.
    return text.count("\n") == len(values) and each_line.fullmatch(text) is not None
