"""A customer's one hash (store/records.py): what is written reads back the same, compactly."""

from __future__ import annotations

import msgspec
import pytest

from prefill.models import ConsentAction, ConsentEvent, ConsentSource, Customer
from prefill.store import records

LISTPACK_VALUE_LIMIT = 64
"""Redis's default hash-max-listpack-value (hash-max-ziplist-value before 7.0)."""


def as_hash(customer: Customer, events: list[ConsentEvent]) -> dict[bytes, bytes]:
    """The hash the write scripts leave: record fields, generation, history and state."""
    fields = {k.encode(): v.encode() for k, v in records.record_fields(customer).items()}
    fields[b"g"] = str(customer.generation).encode()
    for index, event in enumerate(events):
        fields[f"h.{index}".encode()] = records.encode_event(event)
        fields[records.state_field(event.purpose).encode()] = str(index).encode()
    fields[b"n"] = str(len(events)).encode()
    fields[b"v"] = b"1"
    return fields


CUSTOMER = Customer(
    id="crm-0000001",
    email="aino.1@customer1.example",
    first_name="Aino",
    last_name="Åkerlund",
    phone="+358401234567",
    company="Company 1 Oy",
    job_title="Engineer",
    locale="sv",
    owner_id="aino-virtanen",
    attributes={"segment": "s1", "tier.note": "gold"},
    generation=3,
)
GRANT = ConsentEvent(
    "personalization", ConsentAction.GRANTED, 1_764_750_000.25, ConsentSource.IMPORT, "pz-2026-01"
)
WITHDRAWAL = ConsentEvent(
    "personalization",
    ConsentAction.WITHDRAWN,
    1_764_760_000.5,
    ConsentSource.FORM,
    "pz-2026-01",
    actor="",
    ip_prefix="192.0.2.0/24",
    user_agent="Mozilla/5.0",
)
CUSTOM = ConsentEvent("event_photos", ConsentAction.GRANTED, 1.0, ConsentSource.ADMIN, actor="ops")


def test_a_customer_and_their_consent_read_back_as_written() -> None:
    fields = as_hash(CUSTOMER, [GRANT, CUSTOM, WITHDRAWAL])
    stored = records.decode_customer(CUSTOMER.id, fields)
    assert stored.customer == CUSTOMER
    assert stored.consents == {"personalization": WITHDRAWAL, "event_photos": CUSTOM}
    assert records.decode_history(fields) == [GRANT, CUSTOM, WITHDRAWAL]
    assert sorted(records.state_purposes(fields)) == ["event_photos", "personalization"]


def test_defaults_are_left_out_and_read_back() -> None:
    bare = Customer(id="c1", email="a@b.example")
    assert records.record_fields(bare) == {"e": "a@b.example"}
    assert records.decode_customer("c1", as_hash(bare, [])).customer == bare


def test_no_email_field_is_no_customer() -> None:
    stored = records.decode_customer("c1", {})
    assert (stored.customer, stored.consents, stored.version) == (None, {}, b"")


def test_a_typical_customers_values_stay_within_the_listpack_limit() -> None:
    fields = as_hash(CUSTOMER, [GRANT, GRANT])
    assert len(fields) < 128
    assert max(len(v) for v in fields.values()) <= LISTPACK_VALUE_LIMIT
    assert len(records.encode_event(GRANT)) < 40  # purpose, action and source as small ints


def test_stored_codes_never_change() -> None:
    # Events already stored decode by these codes: a new purpose, action or source goes at the
    # end of its enum, never in between.
    assert msgspec.msgpack.decode(records.encode_event(GRANT))[:4] == [0, 0, GRANT.at, 2]
    assert records.state_field("personalization") == "s.0"
    assert records.state_field("email_marketing") == "s.1"
    assert records.state_field("event_photos") == "s:event_photos"
    assert records.state_field("0") == "s:0"  # a purpose named like a code stays apart


@pytest.mark.parametrize(
    "fields",
    [
        {b"e": b"not an email"},
        {b"e": b"a@b.example", b"L": b"de"},
        {b"e": b"a@b.example", b"s.0": b"0", b"h.0": b"{not msgpack"},
        {b"e": b"a@b.example", b"s.0": b"1", b"h.0": records.encode_event(GRANT)},
    ],
)
def test_a_hash_that_no_longer_decodes_raises(fields: dict[bytes, bytes]) -> None:
    with pytest.raises((msgspec.DecodeError, msgspec.ValidationError, KeyError, ValueError)):
        records.decode_customer("c1", fields)


def test_what_a_write_needs_of_a_stored_hash_is_read_from_it_as_stored() -> None:
    fields = {b"e": b"a@b.example", b"a.z": b"last", b"f": b"Aino", b"a.b": b"first"}
    fields |= {b"g": b"2", b"u": b"1764750000", b"v": b"7", b"n": b"2", b"x": b"stray"}
    fields |= {b"h.0": records.encode_event(CUSTOM), b"s:event_photos": b"0"}
    fields |= {b"h.1": records.encode_event(GRANT), b"s.0": b"1"}
    stored = records.decode_customer("c1", fields)
    assert stored.customer is not None
    assert list(stored.customer.attributes.items()) == [("z", "last"), ("b", "first")]
    assert list(stored.consents) == ["event_photos", "personalization"]  # the hash's order
    assert stored.record == {
        b"e": b"a@b.example",
        b"a.z": b"last",
        b"f": b"Aino",
        b"a.b": b"first",
    }
    assert list(stored.record) == [b"e", b"a.z", b"f", b"a.b"]
    assert (stored.version, stored.history, stored.customer.generation) == (b"7", 2, 2)


def test_a_hash_without_its_email_is_no_customer_but_keeps_its_consents_and_version() -> None:
    fields = {b"v": b"3", b"n": b"1", b"h.0": records.encode_event(GRANT), b"s.0": b"0"}
    stored = records.decode_customer("c1", fields)
    assert (stored.customer, stored.consents, stored.version, stored.history) == (
        None,
        {"personalization": GRANT},
        b"3",
        1,
    )
    assert stored.record == {}
