"""`prefill demo`, the README's first command, run as a real process."""

from __future__ import annotations

import base64
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prefill.storage import free_tcp_port

LANDING = "http://127.0.0.1:8001/"
"""examples/landing, served as the README says: `python3 -m http.server 8001 -d …`."""


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback only)
            return bool(response.status == 200)
    except OSError:
        return False


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_prints_working_links_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    port = free_tcp_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")}
    with log.open("w") as output:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefill.cli",
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health/ready"))
        text = log.read_text()
        form_url = re.search(r"Björn Åkerlund \(sv\)\n  form:  (\S+)", text)
        assert form_url is not None, text
        with urllib.request.urlopen(form_url.group(1), timeout=5) as response:  # noqa: S310
            page = response.read().decode()
        assert '<html lang="sv">' in page
        assert 'value="Björn"' in page
        assert "Eero Hämäläinen (fi, no consent: shows the empty form)" in text
        # Every printed link names the demo's own port, the landing page's too.
        assert "127.0.0.1:8000" not in text
        assert f"  widget: {LANDING}?service=http%3A%2F%2F127.0.0.1%3A{port}#t=" in text
        feedback_url = re.search(r"Björn Åkerlund \(sv\)\n(?:  .+\n)*?  feedback: (\S+)", text)
        assert feedback_url is not None, text
        with urllib.request.urlopen(feedback_url.group(1), timeout=5) as response:  # noqa: S310
            feedback = response.read().decode()
        assert "Hur var Summit?" in feedback
        assert 'value="Björn"' in feedback
        assert 'type="radio" name="recommend" value="10"' in feedback
        landing = re.search(r"second terminal:\n  python3 -m http.server 8001 -d (\S+)\n", text)
        assert landing is not None, text
        assert (Path(landing.group(1)) / "index.html").is_file()
        dashboard_url = f"http://127.0.0.1:{port}/admin/dashboard"
        assert f"The funnel dashboard: {dashboard_url} (any user;" in text
        create_key = re.search(r"\n  prefill (keys create dashboard --scope read .+)\n", text)
        assert create_key is not None, text
        created = subprocess.run(
            [sys.executable, "-m", "prefill.cli", *shlex.split(create_key.group(1))],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        login = base64.b64encode(f"anyone:{created.stdout.strip()}".encode()).decode()
        request = urllib.request.Request(dashboard_url, headers={"Authorization": f"Basic {login}"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            assert response.status == 200
        redis_pid = re.search(r"\(pid (\d+)\)", text)
        assert redis_pid is not None
        # The freeze hint reads the pid file, which a supervised restart keeps true.
        pid_file = re.search(r"kill -STOP \$\(cat (\S+)\)", text)
        assert pid_file is not None, text
        assert Path(pid_file.group(1)).read_text().strip() == redis_pid.group(1)
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        wait_for(lambda: not process_exists(int(redis_pid.group(1))), timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        leftover = re.search(r"\(pid (\d+)\)", log.read_text())
        if leftover and process_exists(int(leftover.group(1))):
            os.kill(int(leftover.group(1)), signal.SIGKILL)  # never leave a server behind
