"""The test cluster behaves as the production topology the cluster issue targets: keys spread
over three primaries, multi-key commands are refused across slots, and a replica takes over a
killed primary with what WAIT confirmed it had."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from tests.redis_cluster import RedisClusterProcesses


def test_keys_spread_over_every_primary(cluster: RedisClusterProcesses) -> None:
    primaries = {cluster.primary_port_for(f"pf:{{b:{bucket}}}:probe") for bucket in range(64)}
    assert len(primaries) == 3


def test_multi_key_commands_across_slots_are_refused(cluster: RedisClusterProcesses) -> None:
    with cluster.client() as client:
        client.set("pf:{b:1}:x", "1")
        client.set("pf:{b:1}:y", "2")
        assert client.execute_command("MGET", "pf:{b:1}:x", "pf:{b:1}:y") == ["1", "2"]
        # Sent to one node as it is, so the server's own rule shows.
        node = client.get_node_from_key("pf:{b:1}:x")
        with pytest.raises(redis.ResponseError, match="same slot"):
            client.execute_command("MGET", "pf:{b:1}:x", "pf:{b:2}:x", target_nodes=node)


def test_a_replica_takes_over_with_what_wait_confirmed(
    tmp_path: Path,
) -> None:
    # A cluster of its own: this test kills one of its primaries.
    processes = RedisClusterProcesses(tmp_path)
    processes.start()
    try:
        key = "pf:{b:7}:consent"
        with processes.client() as client:
            client.set(key, "withdrawn")
            node = client.get_node_from_key(key)
            assert client.execute_command("WAIT", 1, 2000, target_nodes=node) == 1
        processes.kill(processes.primary_port_for(key))
        processes.wait_until_ok()
        with RedisCluster.from_url(
            f"redis://127.0.0.1:{processes.live_ports()[0]}/0", decode_responses=True
        ) as client:
            assert client.get(key) == "withdrawn"
    finally:
        processes.stop()
