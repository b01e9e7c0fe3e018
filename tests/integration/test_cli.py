"""The operator's CLI against a real Redis: import, mint, revoke."""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import pytest
import redis
from litestar.testing import TestClient

from prefill.app import create_app
from prefill.models import ConsentAction, ConsentEvent, ConsentSource
from prefill.storage import free_tcp_port
from prefill.store.keys import customer_key
from tests.conftest import EXAMPLES, PUBLIC_URL, SECRET, make_settings
from tests.helpers import append_consent, relative, run, stored_customer, stored_history
from tests.topology import Topology, sync_client

CUSTOMERS = str(EXAMPLES / "customers.csv")
VERSIONS = (
    "--notice-version",
    "personalization=pz-2026-01",
    "--notice-version",
    "email_marketing=em-2026-01",
)


def test_import_examples_then_mint_links_that_open(env: dict[str, str], redis_url: str) -> None:
    code, out, err = run(env, "import", "examples", str(EXAMPLES))
    assert code == 0, err
    assert "7 customers" in out

    # A list of ids may end a row early: the cells it lacks are empty.
    source = "customer_id,segment\ncust-1003,nordics\nnobody,x\ncust-1005\n"
    code, out, err = run(env, "mint", "--campaign", "spring-summit-2027-invite", stdin=source)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["customer_id"] for r in rows] == ["cust-1003", "cust-1005"]
    assert (rows[0]["segment"], rows[1]["segment"]) == ("nordics", "")
    assert rows[0]["form_url"].startswith(f"{PUBLIC_URL}/f/spring-summit-2027?t=")
    assert rows[0]["card_url"].startswith(f"{PUBLIC_URL}/card?t=")
    assert rows[0]["vcard_url"].startswith(f"{PUBLIC_URL}/card/vcard?t=")
    assert rows[0]["unsubscribe_url"].startswith(f"{PUBLIC_URL}/u?t=")
    assert rows[0]["list_unsubscribe"] == f"<{rows[0]['unsubscribe_url']}>"
    assert rows[0]["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert "stdin: line 3: unknown customer id" in err
    assert "minted 2 link set(s) for spring-summit-2027-invite, skipped 1" in err

    with TestClient(app=create_app(make_settings(redis_url)), base_url=PUBLIC_URL) as client:
        assert 'value="Björn"' in client.get(relative(rows[0]["form_url"])).text
        assert "Emily Carter" in client.get(relative(rows[1]["card_url"])).text


def test_importing_the_same_customers_twice_changes_nothing(
    env: dict[str, str], redis_url: str
) -> None:
    assert run(env, "import", "examples")[0] == 0
    with sync_client(redis_url) as client:
        before = len(stored_history(client, "cust-1001"))
        assert before == 2
        code, out, err = run(env, "import", "customers", CUSTOMERS, *VERSIONS)
        assert code == 0, err
        assert "7 rows: 0 created, 0 updated, 7 unchanged, 0 bad; 0 consent changes" in out
        assert len(stored_history(client, "cust-1001")) == before


def test_reimport_keeps_revoked_links_dead(env: dict[str, str], redis_url: str) -> None:
    assert run(env, "import", "examples")[0] == 0
    code, out, _ = run(env, "revoke-customer", "cust-1001")
    assert code == 0
    assert "new link generation 1" in out
    assert run(env, "import", "customers", CUSTOMERS, *VERSIONS)[0] == 0
    with sync_client(redis_url) as client:
        assert stored_customer(client, "cust-1001")["generation"] == 1


def test_mint_refuses_a_revoked_or_unknown_campaign(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "import", "examples")[0] == 0
    skipped = tmp_path / "skipped.csv"
    skipped.write_text("line,customer_id,reason\n2,x,an earlier mint's\n", encoding="utf-8")
    code, _, err = run(
        env, "mint", "--campaign", "nope", "--skipped", str(skipped), stdin="customer_id\nx\n"
    )
    assert code == 1
    assert "no campaign 'nope'" in err
    assert "an earlier mint's" in skipped.read_text(encoding="utf-8")  # a mint that did nothing
    assert run(env, "revoke-campaign", "spring-summit-2027-invite")[0] == 0
    code, _, err = run(
        env, "mint", "--campaign", "spring-summit-2027-invite", stdin="customer_id\ncust-1001\n"
    )
    assert code == 1
    assert "is revoked" in err


def test_campaign_for_an_unknown_form_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns.csv"
    campaigns.write_text("id,form_id\nc1,no-such-form\n")
    code, _, err = run(env, "import", "campaigns", str(campaigns))
    assert code == 1
    assert "unknown form id(s): no-such-form" in err


def test_missing_secret_is_a_clear_error(env: dict[str, str]) -> None:
    del env["PREFILL_SECRET_KEYS"]
    code, _, err = run(env, "mint", "--campaign", "x", stdin="customer_id\n")
    assert code == 1
    assert "PREFILL_SECRET_KEYS: at least one signing key is required, the service's own" in err
    assert "print(secrets.token_urlsafe(48))" in err  # how to make one


def test_embedded_redis_is_used_without_a_url(tmp_path: Path) -> None:
    """Without PREFILL_REDIS_URL the CLI starts the shipped redis-server in the data dir."""
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    env = {"PREFILL_DATA_DIR": str(tmp_path / "data"), "PREFILL_SECRET_KEYS": SECRET}
    code, out, err = run(env, "import", "examples", str(examples))
    assert code == 0, err
    assert (tmp_path / "data" / "redis" / "appendonly.aof").exists() or any(
        (tmp_path / "data" / "redis").glob("appendonly*")
    )
    code, out, err = run(
        env, "mint", "--campaign", "spring-summit-2027-invite", stdin="customer_id\ncust-1001\n"
    )
    assert code == 0, err
    assert "cust-1001" in out


def test_one_data_dir_has_one_redis_server(tmp_path: Path) -> None:
    """A second owner is refused (short CLI commands share the owner's server instead, see
    test_cli_commands_share_a_running_servers_redis); a server orphaned by an owner that died
    is shut down before a new one starts."""
    from prefill.storage import DataDirInUse, EmbeddedRedis, EmbeddedRedisError, start_supervised

    data = tmp_path / "redis"
    owner = EmbeddedRedis(data)
    owner.start()
    try:
        with pytest.raises(DataDirInUse) as exc:
            EmbeddedRedis(data).start()
        assert exc.value.url == owner.url
        # A long-running service refuses to lean on another process's server.
        with pytest.raises(EmbeddedRedisError, match="PREFILL_REDIS_URL="):
            start_supervised(data)
    finally:
        owner.stop()

    orphan = EmbeddedRedis(data)
    orphan.start()
    orphan_process = orphan._process
    assert orphan_process is not None
    orphan._process = None
    assert orphan._lock_fd is not None
    os.close(orphan._lock_fd)  # as if the owning process had died with kill -9
    orphan._lock_fd = None
    successor = EmbeddedRedis(data)
    try:
        successor.start()
        # The orphan was asked to shut down (saving its data) before the successor started.
        assert orphan_process.wait(timeout=10) == 0
        assert successor.pid != orphan_process.pid
        with redis.Redis.from_url(successor.url) as client:
            assert client.ping()
    finally:
        successor.stop()
        if orphan_process.poll() is None:
            orphan_process.kill()
            orphan_process.wait()


def test_a_reimport_does_not_undo_a_withdrawal(env: dict[str, str], redis_url: str) -> None:
    assert run(env, "import", "examples")[0] == 0
    with sync_client(redis_url) as client:
        # The customer withdrew (here written as the admin API will write it).
        event = ConsentEvent("personalization", ConsentAction.WITHDRAWN, 9e9, ConsentSource.ADMIN)
        append_consent(client, "cust-1001", event)
        code, out, _ = run(env, "import", "customers", CUSTOMERS, *VERSIONS)
        assert code == 0
        assert "0 consent changes recorded" in out
        assert stored_history(client, "cust-1001")[-1] == event


def test_a_revoked_campaign_stays_revoked_when_reimported(
    env: dict[str, str], redis_url: str
) -> None:
    assert run(env, "import", "examples")[0] == 0
    assert run(env, "revoke-campaign", "spring-summit-2027-invite")[0] == 0
    assert run(env, "import", "examples")[0] == 0  # e.g. the demo restarting
    assert run(env, "import", "campaigns", str(EXAMPLES / "campaigns.csv"))[0] == 0
    with sync_client(redis_url) as client:
        raw = client.hget("pf:{catalog}:campaigns", "spring-summit-2027-invite")
        assert raw is not None
        assert b'"state":"revoked"' in raw


def test_a_deep_data_dir_gets_a_private_socket_not_a_tcp_port(tmp_path: Path) -> None:
    from prefill.storage import MAX_SOCKET_PATH, EmbeddedRedis

    deep = tmp_path / ("d" * 60) / ("e" * 60) / "redis"
    server = EmbeddedRedis(deep)
    server.start()
    try:
        assert server.url.startswith("unix://")
        assert len(str(server.socket_path)) <= MAX_SOCKET_PATH
        assert server.socket_path.parent.stat().st_mode & 0o777 == 0o700
        with redis.Redis.from_url(server.url) as client:
            assert client.config_get("dir")["dir"] == str(deep)
    finally:
        server.stop()


def test_ids_that_would_break_the_key_schema_are_refused(env: dict[str, str]) -> None:
    code, _, err = run(env, "revoke-customer", "cust}{x")
    assert code == 1
    assert "is not an id" in err
    code, _, err = run(env, "revoke-customer", "nobody")
    assert code == 1
    assert "no customer 'nobody'" in err


def test_cli_commands_share_a_running_servers_redis(tmp_path: Path) -> None:
    from prefill.storage import EmbeddedRedis

    env = {"PREFILL_DATA_DIR": str(tmp_path / "data"), "PREFILL_SECRET_KEYS": SECRET}
    owner = EmbeddedRedis(tmp_path / "data" / "redis")
    owner.start()
    try:
        code, _, err = run(env, "import", "examples", str(EXAMPLES))
        assert code == 0, err
        with redis.Redis.from_url(owner.url) as client:
            assert client.exists(customer_key("cust-1001")) == 1
        assert owner.running
    finally:
        owner.stop()


def test_spreadsheet_csv_with_a_byte_order_mark(env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, "import", "examples")[0] == 0
    exported = tmp_path / "customers.csv"
    exported.write_text(
        "\ufeff" + (EXAMPLES / "customers.csv").read_text(encoding="utf-8"), encoding="utf-8"
    )
    assert run(env, "import", "customers", str(exported), *VERSIONS)[0] == 0
    code, out, err = run(
        env,
        "mint",
        "--campaign",
        "spring-summit-2027-invite",
        stdin="\ufeffcustomer_id,x\ncust-1001,1\ncust-1002,2,surplus\n",
    )
    assert code == 0, err
    assert out.startswith("customer_id,x,email,first_name,last_name,locale,form_url")
    assert "stdin: line 3: bad row: more values than columns" in err


def test_consent_columns_need_the_notice_version_they_were_given_under(
    env: dict[str, str], redis_url: str
) -> None:
    code, _, err = run(env, "import", "customers", CUSTOMERS, "--notice-version", "pz:v3")
    assert code == 2
    assert "expected PURPOSE=VERSION" in err
    code, _, err = run(env, "import", "customers", CUSTOMERS, "--notice-version", "typo=v3")
    assert code == 2
    assert "'typo' is not a consent purpose" in err
    code, _, err = run(
        env, "import", "customers", CUSTOMERS, "--notice-version", "personalization=pz-2026-01"
    )
    assert code == 1
    assert "line 1: consent_email_marketing: say which consent notice" in err
    assert "--notice-version email_marketing=VERSION" in err
    assert "nothing was imported" in err
    with sync_client(redis_url) as client:
        assert client.exists(customer_key("cust-1001")) == 0


def test_the_redis_options_stand_for_the_environment_variables(
    env: dict[str, str], topology: Topology
) -> None:
    """`prefill --redis-url URL [--redis-cluster] <command>` as PREFILL_REDIS_URL (and
    PREFILL_REDIS_CLUSTER), which they override: here the environment names a dead port."""
    nowhere = {**env, "PREFILL_REDIS_URL": f"redis://127.0.0.1:{free_tcp_port()}/0"}
    nowhere["PREFILL_REDIS_CLUSTER"] = "0" if topology.cluster else "1"
    options = ["--redis-url", topology.url]
    options.append("--redis-cluster" if topology.cluster else "--no-redis-cluster")
    code, out, err = run(nowhere, *options, "import", "examples", str(EXAMPLES))
    assert code == 0, err
    code, out, err = run(nowhere, *options, "revoke-customer", "cust-1001")
    assert code == 0, err
    assert "new link generation 1" in out
    with sync_client(topology.url) as client:
        assert stored_customer(client, "cust-1001")["generation"] == 1
    code, _, err = run(nowhere, "revoke-customer", "cust-1001")  # the environment alone
    assert code == 1
    assert "Redis" in err
