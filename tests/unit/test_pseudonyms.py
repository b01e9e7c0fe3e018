"""Pseudonyms are stored (tombstones, rate counters): the same id must give the same one in
every version, or an erased customer's tombstone would no longer be found."""

from __future__ import annotations

from prefill.pseudonyms import Pseudonymizer

KEYS = [
    "old-secret-key-0123456789-abcdefghijklmnop",
    "new-secret-key-0123456789-abcdefghijklmnop",
]


def test_a_pseudonym_is_what_it_was_when_stored() -> None:
    # Values the service gave before a pseudonym copied its key's HMAC state.
    pseudonyms = Pseudonymizer(KEYS)
    assert pseudonyms.of("cust-1001") == "c471f975a335e704684ecaa663f4faa8"
    assert pseudonyms.candidates("cust-1001") == [
        "c471f975a335e704684ecaa663f4faa8",
        "2acf3327ae5984ed32a1a765270a7821",
    ]
    assert pseudonyms.of("Åsa") == "062f777caf7c80cd0425e3a4da24a599"
    # Each one is made afresh: one value does not carry over into the next.
    assert pseudonyms.of("cust-1001") == pseudonyms.of("cust-1001")
