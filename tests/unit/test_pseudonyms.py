"""Pseudonyms are stored (tombstones, rate counters): the same id must give the same one in
every version, or an erased customer's tombstone would no longer be found."""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest

from prefill.pseudonyms import Pseudonymizer, _keyed_hashes

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


def test_a_pseudonym_is_the_keys_hmac_sha256() -> None:
    """Made from HMAC's two hashes keyed once: the same as hmac.new, for any value."""
    pseudonyms = Pseudonymizer(KEYS)
    derived = hmac.new(KEYS[-1].encode(), b"prefill.pseudonym.v1", hashlib.sha256).digest()
    rng = random.Random(4)
    values = ["", "cust-1001", "Åsa", "x" * 200, "\u212a\x00\U0001f600"]
    values += ["".join(rng.choices("ab-_ÅäΩ9", k=rng.randrange(40))) for _ in range(200)]
    for value in values:
        expected = hmac.new(derived, value.encode(), hashlib.sha256).hexdigest()[:32]
        assert pseudonyms.of(value) == expected


@pytest.mark.parametrize("length", [0, 1, 32, 63, 64, 65, 200])
def test_hmacs_hashes_keyed_once_are_hmac_for_keys_of_any_length(length: int) -> None:
    key = bytes(range(256))[:length] * (1 + length // 256)
    key = key[:length]
    inner, outer = (h.copy() for h in _keyed_hashes(key))
    inner.update(b"value")
    outer.update(inner.digest())
    assert outer.hexdigest() == hmac.new(key, b"value", hashlib.sha256).hexdigest()
