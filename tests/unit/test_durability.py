"""Which wait a durable write sends, by the primary's version (store/durability.py)."""

from __future__ import annotations

import pytest

from prefill.store.durability import REPLICA_WAIT_MS, replica_wait


@pytest.mark.parametrize("version", ["7.2.0", "7.2.4", "7.4.1", "8.0.2", "10.0.0"])
def test_a_server_with_waitaof_waits_for_a_replicas_fsync(version: str) -> None:
    wait = replica_wait(version)
    assert wait.command == ("WAITAOF", 0, 1, REPLICA_WAIT_MS)
    assert wait.confirmed([0, 1])  # no local fsync asked; one replica fsynced
    assert not wait.confirmed([1, 0])
    assert not wait.confirmed(1)


@pytest.mark.parametrize("version", ["6.2.14", "7.0.15", "7.1.242", "5.0.0", "", "unknown"])
def test_an_older_or_unknown_server_waits_for_a_replicas_memory(version: str) -> None:
    wait = replica_wait(version)
    assert wait.command == ("WAIT", 1, REPLICA_WAIT_MS)
    assert wait.confirmed(1)
    assert wait.confirmed(2)
    assert not wait.confirmed(0)
    assert not wait.confirmed([0, 1])
