"""A mint's read checks a batch's fields together: it must accept exactly what the record's own
constraints (msgspec, models.py) accept, a record at a time."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from prefill.store.mint_reads import _all_valid, _MintRecord

GOOD = ["matti@x.example", "Matti", "Korhonen", "fi", "aino-virtanen"]
ODD_VALUES: list[list[Any]] = [
    [
        "no-at.example",
        "a@b@c.example",
        "a@b.c\n",
        "a@b.c\nd@e.f",
        "a b@c.example",
        "x" * 250 + "@b.c",
    ],
    ["", "Ä" * 200, "Ä" * 201, "tab\there", "line\nbreak", "end\n", "\u2028", "'=1+1"],
    ["", "O'Reilly", "x\x7f"],
    ["fi", "sv", "en", "de", "FI"],
    [None, "aino-virtanen", "bad id!", "", "a" * 65, "ok\n"],
]


def valid_one_by_one(record: list[Any]) -> bool:
    try:
        msgspec.convert(record, _MintRecord)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("field", "value"), [(f, v) for f, vs in enumerate(ODD_VALUES) for v in vs]
)
def test_a_batch_is_valid_only_if_each_record_is(field: int, value: Any) -> None:
    record = GOOD.copy()
    record[field] = value
    batch = [GOOD, record, GOOD]
    if _all_valid(batch):
        assert all(valid_one_by_one(each) for each in batch)
    # A batch that fails is checked a record at a time: only a false accept would be wrong.
    assert _all_valid([GOOD, GOOD])


def test_ordinary_batches_pass_whole() -> None:
    names = ["Siobhán", "Björn", "", "Päivi"]
    batch = [
        [f"{first.lower() or 'x'}.{n}@c{n}.example", first, last, locale, owner]
        for n, (first, last, locale, owner) in enumerate(
            itertools.product(names, names, ["fi", "sv", "en"], [None, "emily-carter"])
        )
    ]
    assert all(valid_one_by_one(record) for record in batch)
    assert _all_valid(batch)
    assert _all_valid([])
