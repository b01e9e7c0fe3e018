"""What the CLI says: a busy port, a missing file, where minted links point; and `serve`
taking `--data-dir` like every command."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from prefill.storage import EmbeddedRedis, free_tcp_port
from tests.conftest import EXAMPLES, SECRET
from tests.helpers import run
from tests.integration.test_demo import answers, wait_for

CAMPAIGN = "spring-summit-2027-invite"


def prefill(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `prefill` command as its own process, without the caller's PREFILL_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")}
    return subprocess.run(
        [sys.executable, "-m", "prefill.cli", *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def test_demo_on_a_busy_port_says_so_in_one_line_and_prints_no_link(
    busy_port: int, tmp_path: Path
) -> None:
    done = prefill("demo", "--port", str(busy_port), "--data-dir", "data", env={}, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: port {busy_port} on 127.0.0.1 is in use by another program: stop it, "
        "or choose another port with --port\n"
    )
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started


def test_serve_on_a_busy_port_or_admin_port_says_so(busy_port: int, tmp_path: Path) -> None:
    env = {"PREFILL_SECRET_KEYS": SECRET, "PREFILL_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = prefill("serve", "--port", str(busy_port), env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: port {busy_port} on 127.0.0.1 is in use")
    assert done.stderr.count("\n") == 1
    free = str(free_tcp_port())
    admin = prefill("serve", "--port", free, "--admin-port", str(busy_port), env=env, cwd=tmp_path)
    assert admin.returncode == 1
    assert admin.stderr == (
        f"Error: port {busy_port} on 127.0.0.1 is in use by another program: stop it, "
        "or choose another port with --admin-port\n"
    )


def test_serve_takes_data_dir_like_every_command(tmp_path: Path) -> None:
    """Without PREFILL_REDIS_URL, `serve --data-dir` runs the embedded Redis there."""
    port = free_tcp_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFILL_")}
    command = [sys.executable, "-m", "prefill.cli", "serve", "--port", str(port)]
    serve = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "elsewhere")],
        env={**clean, "PREFILL_SECRET_KEYS": SECRET},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health/ready"))
        assert any((tmp_path / "elsewhere" / "redis").glob("appendonly*"))
        assert not (tmp_path / "prefill-data").exists()
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def test_mint_mentions_prefill_public_url_only_when_it_is_not_set(env: dict[str, str]) -> None:
    assert run(env, "import", "examples")[0] == 0
    ids = "customer_id\ncust-1001\n"
    code, _, err = run(env, "mint", "--campaign", CAMPAIGN, stdin=ids)
    assert code == 0, err
    assert "PREFILL_PUBLIC_URL" not in err
    unset = {k: v for k, v in env.items() if k != "PREFILL_PUBLIC_URL"}
    code, out, err = run(unset, "mint", "--campaign", CAMPAIGN, stdin=ids)
    assert code == 0, err
    assert "http://127.0.0.1:8000/f/spring-summit-2027?t=" in out
    assert err.endswith(
        "note: the links point to http://127.0.0.1:8000, the default, which only this machine "
        "can open; set PREFILL_PUBLIC_URL for links to send to customers\n"
    )


@pytest.mark.parametrize(
    ("args", "option", "missing"),
    [
        (("import", "customers", "{x}"), "'FILE'", "file"),
        (("import", "contacts", "{x}"), "'FILE'", "file"),
        (("import", "forms", "{x}"), "'FILE'", "file"),
        (("import", "campaigns", "{x}"), "'FILE'", "file"),
        (("import", "examples", "{x}"), "'[FOLDER]'", "folder"),
        (("import", "contacts", "{contacts}", "--photos", "{x}"), "'--photos'", "folder"),
        (("mint", "--campaign", CAMPAIGN, "--input", "{x}"), "'--input'", "file"),
        (("demo", "--examples", "{x}"), "'--examples'", "folder"),
    ],
)
def test_a_missing_file_or_folder_is_said_one_way_by_every_command(
    env: dict[str, str], tmp_path: Path, args: tuple[str, ...], option: str, missing: str
) -> None:
    absent = tmp_path / "absent.csv"
    filled = [a.format(x=absent, contacts=EXAMPLES / "contacts.csv") for a in args]
    code, _, err = run(env, *filled)
    assert code == 2
    assert err.endswith(f"Error: Invalid value for {option}: {absent}: no such {missing}\n"), err


def test_a_folder_where_a_file_belongs_is_said_the_same_way(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, _, err = run(env, "import", "customers", str(tmp_path))
    assert code == 2
    assert err.endswith(f"Error: Invalid value for 'FILE': {tmp_path}: not a file\n")


def test_an_examples_folder_without_its_files_names_each_missing_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder)
    (folder / "forms.json").unlink()
    (folder / "customers.csv").unlink()
    code, _, err = run(env, "import", "examples", str(folder))
    assert code == 1
    assert f"{folder}: forms.json: no such file\n" in err
    assert f"{folder}: customers.csv: no such file\n" in err
    assert "Traceback" not in err


def test_a_command_beside_a_service_whose_redis_is_frozen_says_that_redis_does_not_answer(
    tmp_path: Path,
) -> None:
    """The demo's "Try failing closed" step: a command run meanwhile names the cause."""
    owner = EmbeddedRedis(tmp_path / "data" / "redis")  # what a running demo holds
    owner.start()
    try:
        assert owner.pid is not None
        os.kill(owner.pid, signal.SIGSTOP)
        done = prefill("keys", "list", "--data-dir", "data", env={}, cwd=tmp_path)
        os.kill(owner.pid, signal.SIGCONT)
    finally:
        owner.stop()
    assert done.returncode == 1
    assert "is in use by another prefill process, and its Redis does not answer" in done.stderr


def test_an_unreachable_redis_is_named_without_its_password_and_nothing_is_done(
    env: dict[str, str],
) -> None:
    """A command that never reached Redis did nothing, read-only or not: it says where it
    looked (no password shown), not that it may be partly done."""
    port = free_tcp_port()
    for command in (["keys", "list"], ["revoke-customer", "cust-1001"]):
        code, out, err = run(
            env,
            "--redis-url",
            f"redis://user:hunter2@127.0.0.1:{port}/0",
            "--no-redis-cluster",
            *command,
        )
        assert code == 1
        assert out == ""
        assert err == (
            f"Error: cannot reach Redis at redis://***@127.0.0.1:{port}/0 (ConnectionError); "
            "nothing was done\n"
        )


def test_a_cluster_without_a_url_names_the_option_and_the_variable(env: dict[str, str]) -> None:
    no_url = {k: v for k, v in env.items() if k != "PREFILL_REDIS_URL"}
    code, out, err = run(no_url, "--redis-cluster", "keys", "list")
    assert code == 1
    assert out == ""
    assert err == (
        "Error: a Redis Cluster (--redis-cluster or PREFILL_REDIS_CLUSTER=1) needs a Redis URL "
        "(--redis-url or PREFILL_REDIS_URL) naming one of the cluster's nodes\n"
    )
