"""`prefill serve --workers 2`: processes that share nothing but Redis, run for real."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prefill.storage import free_tcp_port
from tests.conftest import EXAMPLES
from tests.helpers import relative, run
from tests.integration.test_demo import answers, wait_for


def page(url: str) -> str:
    """The body, of a refusal too (urlopen raises on 4xx)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
            return str(response.read().decode())
    except urllib.error.HTTPError as refused:
        return str(refused.read().decode())


def test_a_revocation_is_in_force_on_every_worker_at_once(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert run(env, "import", "examples", str(EXAMPLES))[0] == 0
    code, out, err = run(
        env, "mint", "--campaign", "spring-summit-2027-invite", stdin="customer_id\ncust-1003\n"
    )
    assert code == 0, err
    port = free_tcp_port()
    url = f"http://127.0.0.1:{port}" + relative(next(csv.DictReader(io.StringIO(out)))["form_url"])
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        serve = subprocess.Popen(
            [sys.executable, "-m", "prefill.cli", "serve", "--port", str(port), "--workers", "2"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: log.read_text().count("Application startup complete") == 2)
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health/ready"))
        assert 'value="Björn"' in page(url)
        assert run(env, "revoke-customer", "cust-1003")[0] == 0
        # Twenty requests on the workers' shared socket: none may use state read before the revoke.
        assert not [n for n in range(20) if 'value="Björn"' in page(url)]
    finally:
        serve.terminate()
        serve.wait(timeout=30)
