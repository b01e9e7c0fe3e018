"""A real Redis Cluster for tests: six processes of the project's own `redis-server` binary.

Three primaries and three replicas on free loopback ports, each with an append-only file fsynced
on every write (as production must run), formed with the `redis-cli --cluster create` that ships
beside the server. Tests may SIGKILL a primary and wait for its replica to take over.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster

from prefill.storage import free_tcp_port, redis_server_binary

NODE_TIMEOUT_MS = 1000
"""How long a primary may be silent before its replica takes over: short, so failovers are quick."""
START_TIMEOUT_SECONDS = 30.0
CLUSTER_BUS_OFFSET = 10_000
MAX_PORT = 65_535


def cluster_port() -> int:
    """A free port whose cluster bus port (the port + 10000) is a port too, and free."""
    while True:
        port = free_tcp_port()
        if port + CLUSTER_BUS_OFFSET <= MAX_PORT and _free(port + CLUSTER_BUS_OFFSET):
            return port


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ClusterError(RuntimeError):
    """The cluster could not be formed or did not settle; the message says why."""


class RedisClusterProcesses:
    """Six `redis-server` processes in cluster mode under `base_dir`, started by `start()`."""

    def __init__(self, base_dir: Path, primaries: int = 3, replicas_per_primary: int = 1) -> None:
        self.base_dir = base_dir
        count = primaries * (1 + replicas_per_primary)
        self.ports = [cluster_port() for _ in range(count)]
        self.replicas_per_primary = replicas_per_primary
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Any one node: the cluster client discovers the rest."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        server = redis_server_binary()
        for port in self.ports:
            node_dir = self.base_dir / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self._processes[port] = subprocess.Popen(
                [
                    server,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", str(node_dir),
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                    "--appendonly", "yes",
                    "--appendfsync", "always",
                    "--save", "",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            for port in self.ports:
                self._wait_for_ping(port)
            self._create()
            self.wait_until_ok()
            self._wait_for_replicas_in_sync()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        cli = str(Path(redis_server_binary()).with_name("redis-cli"))
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        result = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas",
             str(self.replicas_per_primary), "--cluster-yes"],
            capture_output=True,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed: {result.stdout[-500:]!r}")

    def _wait_for_replicas_in_sync(self) -> None:
        """Until every primary has its replicas online: before a replica's first full sync
        ends, WAIT counts it out, and a durable write right after forming would be a 503."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if all(self._replicas_online(port) for port in self.ports):
                return
            time.sleep(0.1)
        raise ClusterError("the replicas did not finish their first sync")

    def _replicas_online(self, port: int) -> bool:
        """True for a replica; for a primary, whether all its replicas are online."""
        try:
            with redis.Redis(port=port, socket_timeout=0.5, decode_responses=True) as node:
                info = node.info("replication")
        except redis.RedisError:
            return False
        if info.get("role") != "master":
            return True
        replicas = [value for key, value in info.items() if key.startswith("slave")]
        online = [r for r in replicas if isinstance(r, dict) and r.get("state") == "online"]
        return len(replicas) == len(online) == self.replicas_per_primary

    def _wait_for_ping(self, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._processes[port].poll() is not None:
                raise ClusterError(f"node {port} exited at start")
            try:
                with redis.Redis(port=port, socket_timeout=0.5) as node:
                    node.ping()
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise ClusterError(f"node {port} did not start")

    def live_ports(self) -> list[int]:
        return [port for port, process in self._processes.items() if process.poll() is None]

    def wait_until_ok(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until every live node says the cluster is ok and every slot has a live primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._node_ok(port) for port in self.live_ports()):
                return
            time.sleep(0.1)
        raise ClusterError("the cluster did not reach cluster_state:ok")

    def _node_ok(self, port: int) -> bool:
        """The node sees the cluster ok, and every primary serving slots in its view is alive."""
        try:
            with redis.Redis(port=port, socket_timeout=0.5, decode_responses=True) as node:
                info = str(node.execute_command("CLUSTER", "INFO"))
                nodes = str(node.execute_command("CLUSTER", "NODES"))
        except redis.RedisError:
            return False
        if "cluster_state:ok" not in info:
            return False
        live = {f"127.0.0.1:{live_port}" for live_port in self.live_ports()}
        for line in nodes.splitlines():
            fields = line.split()
            serves_slots = len(fields) > 8
            if "master" in fields[2] and serves_slots and fields[1].split("@")[0] not in live:
                return False
        return True

    def client(self) -> RedisCluster:
        return RedisCluster.from_url(self.url, decode_responses=True)

    def primary_port_for(self, key: str) -> int:
        """The port of the primary that now holds `key`'s slot."""
        with self.client() as cluster:
            node = cluster.get_node_from_key(key)
            return int(node.port)

    def pid_of(self, port: int) -> int:
        """The process of the node on `port` (tests pause a replica with SIGSTOP)."""
        return self._processes[port].pid

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would: no shutdown, no final fsync beyond AOF always."""
        process = self._processes[port]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
