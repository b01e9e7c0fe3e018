"""One hash per customer: the record, its consent history and the derived state, in short fields.

A customer is one Redis hash (`pf:{b:<n>}:c:<id>`, keys.py) with these fields:

| field        | holds                                                                  |
|--------------|------------------------------------------------------------------------|
| `e`          | email (always there: it marks that the customer exists)                |
| `f` `l`      | first and last name                                                    |
| `p` `c` `j`  | phone, company, job title                                              |
| `L` `o`      | locale, owner (contact person id)                                      |
| `a.<name>`   | a free attribute                                                       |
| `g`          | the link generation (bumped to kill every link issued so far)          |
| `u`          | `updated_at`: Unix seconds of the last write (retention reads it)      |
| `v`          | write version: every record or consent write raises it, so a bulk      |
|              | write can compare-and-set on it alone                                  |
| `n`          | how many consent events the history holds                              |
| `t`          | set when the customer was created over an erased namesake's tombstone: |
|              | only then must a bulk write look the tombstone up (its withdrawals     |
|              | still stand against an import)                                         |
| `h.<i>`      | consent event `i` (0 first), a msgpack array: append-only              |
| `s.<code>`   | the index of the latest event of a purpose the service defines        |
|              | (purposes.py, by its code): the derived state                          |
| `s:<purpose>`| the same for any other purpose, by its id                              |

A field that holds its default (an empty name, the default locale) is left out. Purposes the
service defines and the event's action and source are small integers; a typical customer's
values stay under Redis's `hash-max-listpack-value` (64 bytes) and its fields under 128, so
Redis keeps the hash as one compact listpack (ziplist on Redis 6) rather than a hash table of
separately allocated strings, which would take several times the memory.

The history entry and the state that points at it are written by one script, so the derived
state never disagrees with the history.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import filterfalse

import msgspec

from prefill.models import DEFAULT_LOCALE, ConsentAction, ConsentEvent, ConsentSource, Customer
from prefill.purposes import ConsentPurpose

EMAIL = "e"
"""The field every customer has: HEXISTS on it tells whether a customer exists."""
GENERATION = "g"
UPDATED_AT = "u"
VERSION = "v"
HISTORY_COUNT = "n"
OVER_TOMBSTONE = "t"
HISTORY_PREFIX = "h."
STATE_PREFIX = "s."
CUSTOM_STATE_PREFIX = "s:"
ATTRIBUTE_PREFIX = "a."

_TEXT_FIELDS: dict[str, str] = {
    "email": EMAIL,
    "first_name": "f",
    "last_name": "l",
    "phone": "p",
    "company": "c",
    "job_title": "j",
    "locale": "L",
    "owner_id": "o",
}
_NAME_OF = {tag.encode(): name for name, tag in _TEXT_FIELDS.items()}
_RECORD_TAGS = frozenset(_NAME_OF)
_TEXT_TAGS = tuple(_NAME_OF.items())
_STATE_KINDS = frozenset({STATE_PREFIX.encode(), CUSTOM_STATE_PREFIX.encode()})

_PURPOSE_CODES = {purpose.value: code for code, purpose in enumerate(ConsentPurpose)}
_PURPOSES = {code: purpose for purpose, code in _PURPOSE_CODES.items()}
_ACTIONS = list(ConsentAction)
_ACTION_CODES = {action: code for code, action in enumerate(_ACTIONS)}
_SOURCES = list(ConsentSource)
_SOURCE_CODES = {source: code for code, source in enumerate(_SOURCES)}
"""Codes are stored: new members go at the end of their enum, never in between."""


class _StoredEvent(msgspec.Struct, array_like=True, frozen=True):
    """A ConsentEvent as stored: the array `[purpose, action, at, source, notice version,
    actor, address prefix, user agent]`, trailing empty strings left out."""

    purpose: int | str
    action: int
    at: float
    source: int
    notice_version: str = ""
    actor: str = ""
    ip_prefix: str = ""
    user_agent: str = ""


_event_decoder = msgspec.msgpack.Decoder(_StoredEvent)
_encoder = msgspec.msgpack.Encoder()


def purpose_code(purpose: str) -> int | str:
    return _PURPOSE_CODES.get(purpose, purpose)


def state_field(purpose: str) -> str:
    """The field holding the index of `purpose`'s latest event."""
    code = _PURPOSE_CODES.get(purpose)
    return f"{CUSTOM_STATE_PREFIX}{purpose}" if code is None else f"{STATE_PREFIX}{code}"


def state_purposes(fields: Mapping[bytes, bytes]) -> list[str]:
    """The purposes a customer's hash holds a state for, read from the field names alone (an
    erasure must not depend on the events still decoding)."""
    purposes = []
    for field in fields:
        if field.startswith(b"s."):
            code = field[2:]
            known = _PURPOSES.get(int(code)) if code.isdigit() else None
            purposes.append(known or code.decode())
        elif field.startswith(b"s:"):
            purposes.append(field[2:].decode())
    return purposes


def action_code(action: ConsentAction) -> int:
    return _ACTION_CODES[action]


def encode_event(event: ConsentEvent) -> bytes:
    values: list[object] = [
        purpose_code(event.purpose),
        _ACTION_CODES[event.action],
        event.at,
        _SOURCE_CODES[event.source],
        event.notice_version,
        event.actor,
        event.ip_prefix,
        event.user_agent,
    ]
    while values[-1] == "":
        values.pop()
    return _encoder.encode(values)


def decode_event(raw: bytes) -> ConsentEvent:
    """Raises msgspec.DecodeError, ValidationError or IndexError for what is no stored event."""
    stored = _event_decoder.decode(raw)
    purpose = stored.purpose
    return ConsentEvent(  # by position, ConsentEvent's order: a link's read makes each
        _PURPOSES[purpose] if isinstance(purpose, int) else purpose,
        _ACTIONS[stored.action],
        stored.at,
        _SOURCES[stored.source],
        stored.notice_version,
        stored.actor,
        stored.ip_prefix,
        stored.user_agent,
    )


def record_fields(customer: Customer) -> dict[str, str]:
    """The customer's record as fields, defaults left out; the generation is not among them
    (it has its own field, written only by the steps that may change it)."""
    fields = {
        tag: value
        for name, tag in _TEXT_FIELDS.items()
        if (value := getattr(customer, name) or "")
        and not (name == "locale" and value == DEFAULT_LOCALE)
    }
    fields |= {ATTRIBUTE_PREFIX + name: value for name, value in customer.attributes.items()}
    return fields


def is_record_field(field: bytes) -> bool:
    return field in _RECORD_TAGS or field.startswith(ATTRIBUTE_PREFIX.encode())


class StoredCustomer(msgspec.Struct, frozen=True):
    """One customer's hash, decoded: `customer` None when there is none (a Struct: a
    NamedTuple's `__new__` runs in Python, for every link's read)."""

    customer: Customer | None
    consents: dict[str, ConsentEvent]
    version: bytes
    """The write version the hash had (b"" for none): what a compare-and-set compares."""
    fields: Mapping[bytes, bytes]
    """The hash as read."""
    history: int = 0
    """How many consent events the history holds: where a write appends the next (every
    append raises the write version, so a compare-and-set on it keeps this true)."""

    @property
    def record(self) -> dict[bytes, bytes]:
        """The record's fields as stored: which a write must remove (read by writes only, so
        not made for every link's read)."""
        return {field: value for field, value in self.fields.items() if is_record_field(field)}


_OTHER_FIELDS = frozenset(
    field.encode() for field in (GENERATION, UPDATED_AT, VERSION, HISTORY_COUNT, OVER_TOMBSTONE)
)
_KNOWN_FIELDS = _RECORD_TAGS | _OTHER_FIELDS
"""The fields of one letter: the record's text fields and the customer's counters."""


def decode_customer(customer_id: str, fields: Mapping[bytes, bytes]) -> StoredCustomer:
    """Raises ValueError (or a msgspec error) for a hash that no longer decodes."""
    if not fields:  # no such customer (yet): what most of a first import reads
        return StoredCustomer(None, {}, b"", {})
    values: dict[str, object] = {}
    for tag, name in _TEXT_TAGS:
        value = fields.get(tag)
        if value is not None:
            values[name] = value.decode()
    attributes: dict[str, str] = {}
    consents: dict[str, ConsentEvent] = {}
    # The rest, in the hash's order: attributes, consent states and history entries (the
    # fields above passed over in C, not one Python step each).
    for field in filterfalse(_KNOWN_FIELDS.__contains__, fields):
        kind = field[:2]
        if kind == b"a.":
            attributes[field[2:].decode()] = fields[field].decode()
        elif kind in _STATE_KINDS:
            event = decode_event(fields[b"h." + fields[field]])
            consents[event.purpose] = event
    version = fields.get(b"v", b"")
    history = int(fields.get(b"n", b"0"))
    if "email" not in values:
        return StoredCustomer(None, consents, version, fields, history)
    values["id"] = customer_id
    values["attributes"] = attributes
    values["generation"] = int(fields.get(b"g", b"0"))
    # Validated as the JSON record was: a hash altered by hand is refused, not served.
    customer = msgspec.convert(values, Customer)
    return StoredCustomer(customer, consents, version, fields, history)


def decode_history(fields: Mapping[bytes, bytes]) -> list[ConsentEvent]:
    """Every consent event of a customer's hash, oldest first."""
    prefix = HISTORY_PREFIX.encode()
    entries = sorted(
        (int(field[len(prefix) :]), value)
        for field, value in fields.items()
        if field.startswith(prefix)
    )
    return [decode_event(value) for _, value in entries]


def record_tags(names: list[str]) -> list[str]:
    """The fields holding these fields of the record (Customer's names for them)."""
    return [_TEXT_FIELDS[name] for name in names]
