"""The example consumer sees a submission on the change feed within a second."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import FORM_PATH
from tests.integration.test_submit import SUBMIT, open_form
from tests.topology import Topology

CONSUMER = Path(__file__).resolve().parents[2] / "examples" / "feed_consumer.py"


def lines_of(stream: IO[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """A queue of the stream's lines, filled by a thread that ends at end of file."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


@pytest.fixture
def consumer(topology: Topology) -> Iterator[tuple[queue.Queue[str], queue.Queue[str]]]:
    cluster = ["--redis-cluster"] if topology.cluster else []
    with subprocess.Popen(
        [sys.executable, str(CONSUMER), "--redis-url", topology.url, "--group", "crm", *cluster],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1", "PREFILL_REDIS_CLUSTER": "0"},
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        (out, out_reader), (err, err_reader) = lines_of(process.stdout), lines_of(process.stderr)
        assert "reading pf:{feed:0}:changes … pf:{feed:15}:changes as crm/" in err.get(timeout=10)
        yield out, err
        process.terminate()
        process.wait(timeout=10)
        out_reader.join(timeout=5)
        err_reader.join(timeout=5)


async def test_the_example_consumer_prints_a_submission_within_a_second(
    client: AsyncTestClient[Litestar], consumer: tuple[queue.Queue[str], queue.Queue[str]]
) -> None:
    out, _ = consumer
    hidden = await open_form(client, FORM_PATH)
    posted = hidden | {"first_name": "Aino", "last_name": "Aalto", "email": "aino@example.fi"}
    sent = time.monotonic()
    answer = await client.post(SUBMIT, data=posted, follow_redirects=False)
    assert answer.status_code == 303
    line = out.get(timeout=1.0)
    latency = time.monotonic() - sent
    assert '"kind": "submission"' in line
    assert '"aino@example.fi"' in line
    assert latency < 1.0


async def test_the_example_consumer_outlives_a_quiet_feed(
    client: AsyncTestClient[Litestar], consumer: tuple[queue.Queue[str], queue.Queue[str]]
) -> None:
    out, err = consumer
    # Longer than one blocking read (5 s), which redis-py's own socket timeout used to cut.
    await asyncio.sleep(6.5)
    hidden = await open_form(client, FORM_PATH)
    posted = hidden | {"first_name": "Aino", "last_name": "Aalto", "email": "aino@example.fi"}
    assert (await client.post(SUBMIT, data=posted, follow_redirects=False)).status_code == 303
    assert '"aino@example.fi"' in out.get(timeout=2.0)
    assert err.empty()
