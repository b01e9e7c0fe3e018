"""The embedded redis-server's lifecycle: one server per data dir, whatever happened before."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from prefill.storage import EmbeddedRedis


def answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_frozen_orphan_is_stopped_before_a_successor_starts(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    orphan = EmbeddedRedis(data)
    orphan.start()
    orphan_process = orphan._process
    assert orphan_process is not None
    os.kill(orphan_process.pid, signal.SIGSTOP)  # frozen, as with the demo's kill -STOP hint
    assert orphan._lock_fd is not None
    os.close(orphan._lock_fd)  # ...and then its owner dies with kill -9
    orphan._lock_fd, orphan._process = None, None
    successor = EmbeddedRedis(data)
    try:
        successor.start()
        assert orphan_process.wait(timeout=15) is not None
        assert successor.pid != orphan_process.pid
        assert answers(successor.url)
    finally:
        successor.stop()
        if orphan_process.poll() is None:
            orphan_process.kill()
            orphan_process.wait()


def test_the_supervisor_restarts_a_server_that_dies_and_stops_when_told(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    server.supervise(restart_delay=0.1)
    try:
        for _ in range(2):
            dead = server.pid
            assert dead is not None
            os.kill(dead, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while not (server.running and server.pid != dead and answers(server.url)):
                assert time.monotonic() < deadline, "the server was not restarted"
                time.sleep(0.05)
    finally:
        server.stop()
    time.sleep(0.5)
    assert not server.running
    assert not answers(server.url)
