"""Which wait a durable write sends, by the primary's version, and what its replies promise
(store/durability.py)."""

from __future__ import annotations

import pytest

from prefill.store.durability import REPLICA_WAIT_MS, Confirmed, replica_wait


@pytest.mark.parametrize("version", ["7.2.0", "7.2.4", "7.4.1", "8.0.2", "10.0.0"])
def test_a_server_with_waitaof_waits_for_a_replicas_fsync(version: str) -> None:
    wait = replica_wait(version)
    assert wait.commands == (("WAITAOF", 0, 1, REPLICA_WAIT_MS), ("WAIT", 0, 0))
    # [no local fsync asked, one replica fsynced], then how many hold it in memory.
    assert wait.confirmed([[0, 1], 1]) is Confirmed.FSYNCED
    assert wait.confirmed([[1, 1], 2]) is Confirmed.FSYNCED


@pytest.mark.parametrize("version", ["7.2.0", "8.0.2"])
def test_replicas_without_appendonly_still_confirm_from_memory(version: str) -> None:
    # A replica without AOF never counts for WAITAOF: its memory confirms, as on older servers.
    wait = replica_wait(version)
    assert wait.confirmed([[1, 0], 1]) is Confirmed.IN_MEMORY
    assert wait.confirmed([[1, 0], 0]) is None
    assert wait.confirmed([[0, 0], 0]) is None


@pytest.mark.parametrize("version", ["6.2.14", "7.0.15", "7.1.242", "5.0.0", "", "unknown"])
def test_an_older_or_unknown_server_waits_for_a_replicas_memory(version: str) -> None:
    wait = replica_wait(version)
    assert wait.commands == (("WAIT", 1, REPLICA_WAIT_MS),)
    assert wait.confirmed([1]) is Confirmed.IN_MEMORY
    assert wait.confirmed([2]) is Confirmed.IN_MEMORY
    assert wait.confirmed([0]) is None
    assert wait.confirmed([[0, 1]]) is None
