"""Commands packed ahead (coalesce.Packed): the same bytes as hiredis packs for the whole."""

from __future__ import annotations

from typing import Any, cast

import hiredis
import pytest

from prefill.coalesce import Packed, packed_head, with_tail

HEADS = [
    ("EVALSHA", "a" * 40, 2, "pf:{b:5}:funnel:spring:counts", "pf:{b:5}:funnel:spring:salt"),
    ("EVALSHA", "b" * 40, 1, "pf:{b:63}:funnel:kevät-2027 ✓:counts", 34_560_000, 0, 1),
    ("HINCRBY", b"raw\r\nbytes", "scanner:agent", 1, 2.5),
]
TAILS = [(), ("0123456789abcdef0123456789abcdef",), ("salt", "", "pseudonym ä", "x" * 300)]


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("tail", TAILS)
def test_a_head_packed_once_and_its_tail_are_what_hiredis_packs(
    head: tuple[object, ...], tail: tuple[str, ...]
) -> None:
    command = with_tail(head, packed_head(head, len(tail)), tail)
    assert isinstance(command, Packed)
    assert command == (*head, *tail)  # as a cluster's pipeline is given it
    assert command.packed == hiredis.pack_command(cast("Any", (*head, *tail)))
