"""The service and the CLI on a real Redis Cluster (three primaries, three replicas) that the
tests start themselves: everything that works on one Redis works there, and a primary's
failover is answered 200 or 503, never 500."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

from prefill.apikeys import Scope
from prefill.app import create_app
from prefill.imports import import_directory
from prefill.links import LinkBuilder
from prefill.models import ConsentAction, ConsentEvent, ConsentSource
from prefill.settings import Settings
from prefill.store import Repository, StoreUnavailable
from prefill.store.client import connect
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import customer_key
from prefill.tokens import LinkSigner
from prefill.web.admin import ADMIN_PATH
from tests.conftest import EXAMPLES, PSEUDONYMS, PUBLIC_URL, SECRET, make_settings
from tests.helpers import form_link, key_headers, run, write_old_schema
from tests.redis_cluster import RedisClusterProcesses


@pytest.fixture
def cluster_url(cluster: RedisClusterProcesses) -> str:
    """The session cluster, emptied for this test."""
    with RedisCluster.from_url(cluster.url) as client:
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    return cluster.url


def cluster_settings(url: str) -> Settings:
    return make_settings(url, redis_cluster=True, redis_timeout_seconds=2)


@pytest.fixture
async def cluster_repository(cluster_url: str) -> AsyncIterator[Repository]:
    client = connect(cluster_url, timeout_seconds=2, retries=1, cluster=True)
    yield Repository(client, PSEUDONYMS)
    await client.aclose()


def cluster_env(url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "PREFILL_REDIS_URL": url,
        "PREFILL_REDIS_CLUSTER": "1",
        "PREFILL_SECRET_KEYS": SECRET,
        "PREFILL_PUBLIC_URL": PUBLIC_URL,
        "PREFILL_DATA_DIR": str(tmp_path / "data"),
    }


def links_for(settings: Settings) -> LinkBuilder:
    signer = LinkSigner(settings.secret_keys, settings.max_link_age_seconds)
    return LinkBuilder(signer, settings.public_url)


def test_import_and_mint_for_every_consenting_customer_across_the_nodes(
    cluster_url: str, tmp_path: Path
) -> None:
    env = cluster_env(cluster_url, tmp_path)
    code, out, err = run(env, "import", "examples", str(EXAMPLES))
    assert code == 0, err
    assert "7 customers" in out
    code, out, err = run(env, "mint", "--campaign", "spring-summit-2027-invite", "--all-consenting")
    assert code == 0, err
    minted = [row["customer_id"] for row in csv.DictReader(io.StringIO(out))]
    with RedisCluster.from_url(cluster_url) as client:
        nodes = {client.get_node_from_key(customer_key(c)).name for c in minted}
    assert len(nodes) > 1  # the segment was read from more than one primary
    assert minted == sorted(minted)
    assert {"cust-1001", "cust-1003"} <= set(minted)


async def test_the_service_on_a_cluster_prefills_withdraws_audits_and_erases(
    cluster_url: str, cluster_repository: Repository, tmp_path: Path
) -> None:
    env = cluster_env(cluster_url, tmp_path)
    # The command runs its own event loop: not in this test's.
    code, _, err = await asyncio.to_thread(run, env, "import", "examples", str(EXAMPLES))
    assert code == 0, err
    settings = cluster_settings(cluster_url)
    links = links_for(settings)
    admin = await key_headers(cluster_repository, Scope.READ, Scope.CONSENT, Scope.ERASE)
    url = await form_link(cluster_repository, links, "cust-1001")
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        assert (await client.get("/health/ready")).status_code == 200
        assert "Matti" in (await client.get(url)).text
        withdrawal = {"purpose": "personalization", "action": "withdrawn"}
        consent_url = f"{ADMIN_PATH}/customers/cust-1001/consent"
        answer = await client.post(consent_url, headers=admin, json=withdrawal)
        assert answer.status_code == 201, answer.text
        assert "Matti" not in (await client.get(url)).text
        audit = (await client.get(f"{ADMIN_PATH}/audit", headers=admin)).json()
        assert [e["at"] for e in audit] == sorted((e["at"] for e in audit), reverse=True)
        assert any(e.get("action") == "consent.withdrawn" for e in audit)
        listed = (await client.get(f"{ADMIN_PATH}/customers", headers=admin)).json()
        assert len(listed["ids"]) == 7
        erased = await client.delete(f"{ADMIN_PATH}/customers/cust-1002", headers=admin)
        assert erased.status_code == 200, erased.text
        listed = (await client.get(f"{ADMIN_PATH}/customers", headers=admin)).json()
        assert "cust-1002" not in listed["ids"]


def test_migrate_moves_old_data_across_the_nodes(cluster_url: str, tmp_path: Path) -> None:
    with RedisCluster.from_url(cluster_url) as client:
        write_old_schema(client, PSEUDONYMS)
    code, out, err = run(cluster_env(cluster_url, tmp_path), "migrate")
    assert code == 0, err
    assert "moved 2 customer(s), 1 tombstone(s), 3 audit entries, 1 day(s)" in out
    with RedisCluster.from_url(cluster_url) as client:
        assert client.exists(customer_key("old-1")) == client.exists(customer_key("old-2")) == 1
        assert not list(client.scan_iter(match="pf:{c:*"))


async def test_a_cluster_error_fails_closed() -> None:
    from redis.exceptions import ClusterDownError, SlotNotCoveredError

    for error in (ClusterDownError("CLUSTERDOWN"), SlotNotCoveredError("no node for slot")):
        with pytest.raises(StoreUnavailable):
            async with unavailable_on_error():
                raise error


async def test_a_primary_that_does_not_answer_a_read_is_unavailable_not_a_bad_record(
    cluster: RedisClusterProcesses, cluster_url: str, cluster_repository: Repository
) -> None:
    await import_directory(cluster_repository, EXAMPLES)
    client = connect(cluster_url, timeout_seconds=0.3, retries=0, cluster=True)
    repository = Repository(client, PSEUDONYMS)
    try:
        assert (await repository.customer_states(["cust-1001"]))["cust-1001"].customer
        primary = cluster.pid_of(cluster.primary_port_for(customer_key("cust-1001")))
        os.kill(primary, signal.SIGSTOP)  # shorter than the cluster's node timeout: no failover
        try:
            with pytest.raises(StoreUnavailable):
                await repository.customer_states(["cust-1001", "cust-1002"])
        finally:
            os.kill(primary, signal.SIGCONT)
    finally:
        await client.aclose()


def replica_pid_of(processes: RedisClusterProcesses, primary_port: int) -> int:
    """The process of the replica following the primary on `primary_port`."""
    with redis.Redis(port=primary_port, decode_responses=True) as primary:
        replica = primary.info("replication")["slave0"]
    return processes.pid_of(int(replica["port"]))


async def test_a_withdrawal_no_replica_confirms_is_a_503_and_its_retry_is_safe(
    cluster: RedisClusterProcesses, cluster_url: str, cluster_repository: Repository
) -> None:
    await import_directory(cluster_repository, EXAMPLES)
    settings = cluster_settings(cluster_url)
    admin = await key_headers(cluster_repository, Scope.CONSENT)
    url = await form_link(cluster_repository, links_for(settings), "cust-1001")
    headers = admin | {"Idempotency-Key": "withdraw-1001"}
    withdrawal = {"purpose": "personalization", "action": "withdrawn"}
    consent_url = f"{ADMIN_PATH}/customers/cust-1001/consent"
    replica = replica_pid_of(cluster, cluster.primary_port_for(customer_key("cust-1001")))
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        os.kill(replica, signal.SIGSTOP)  # the replica cannot confirm anything
        try:
            refused = await client.post(consent_url, headers=headers, json=withdrawal)
        finally:
            os.kill(replica, signal.SIGCONT)
        assert refused.status_code == 503
        retried = await client.post(consent_url, headers=headers, json=withdrawal)
        assert retried.status_code in (200, 201), retried.text
        history = await cluster_repository.consent_history("cust-1001")
        assert [e.action for e in history].count(ConsentAction.WITHDRAWN) == 1
        assert "Matti" not in (await client.get(url)).text


async def test_an_erasure_no_replica_confirms_is_a_503_and_its_retry_is_answered_as_it(
    cluster: RedisClusterProcesses, cluster_url: str, cluster_repository: Repository
) -> None:
    await import_directory(cluster_repository, EXAMPLES)
    settings = cluster_settings(cluster_url)
    admin = await key_headers(cluster_repository, Scope.ERASE)
    erase_url = f"{ADMIN_PATH}/customers/cust-1001"
    replica = replica_pid_of(cluster, cluster.primary_port_for(customer_key("cust-1001")))
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        os.kill(replica, signal.SIGSTOP)
        try:
            refused = await client.delete(erase_url, headers=admin | {"Idempotency-Key": "e-1"})
        finally:
            os.kill(replica, signal.SIGCONT)
        assert refused.status_code == 503
        assert await cluster_repository.get_customer("cust-1001") is None  # erased, unconfirmed
        retried = await client.delete(erase_url, headers=admin | {"Idempotency-Key": "e-1"})
        assert retried.status_code == 200, retried.text
        assert retried.json()["customer_id"] == "cust-1001"
        # Another request (or none) finds no customer: the key names the first erasure only.
        other = await client.delete(erase_url, headers=admin | {"Idempotency-Key": "e-2"})
        assert other.status_code == 404
        assert (await client.delete(erase_url, headers=admin)).status_code == 404


async def test_a_revocation_waits_for_a_replica_of_every_primary(
    cluster: RedisClusterProcesses, cluster_url: str, cluster_repository: Repository
) -> None:
    """The revocation raises the catalog version's copy in every bucket, on every primary: any
    primary whose replica cannot confirm makes it a 503, and revoking again is safe."""
    await import_directory(cluster_repository, EXAMPLES)
    settings = cluster_settings(cluster_url)
    admin = await key_headers(cluster_repository, Scope.DATA)
    url = await form_link(cluster_repository, links_for(settings), "cust-1001")
    revoke_url = f"{ADMIN_PATH}/campaigns/spring-summit-2027-invite/revoke"
    # The primary that holds neither the catalog nor this customer: only the copies are there.
    held = {cluster.primary_port_for("pf:{catalog}:campaigns")}
    held.add(cluster.primary_port_for(customer_key("cust-1001")))
    with cluster.client() as nodes:
        primaries = [n.port for n in nodes.get_primaries()]
    elsewhere = next((port for port in primaries if port not in held), primaries[0])
    replica = replica_pid_of(cluster, elsewhere)
    async with AsyncTestClient(app=create_app(settings), base_url=PUBLIC_URL) as client:
        os.kill(replica, signal.SIGSTOP)
        try:
            refused = await client.post(revoke_url, headers=admin)
        finally:
            os.kill(replica, signal.SIGCONT)
        assert refused.status_code == 503
        again = await client.post(revoke_url, headers=admin)
        assert again.status_code == 200, again.text
        assert again.json()["state"] == "revoked"
        assert "Matti" not in (await client.get(url)).text


async def test_a_failover_is_answered_200_or_503_and_heals_by_itself(tmp_path: Path) -> None:
    # A cluster of its own: this test kills one of its primaries.
    processes = RedisClusterProcesses(tmp_path / "cluster")
    processes.start()
    client = connect(processes.url, timeout_seconds=2, retries=1, cluster=True)
    try:
        env = cluster_env(processes.url, tmp_path)
        code, _, err = await asyncio.to_thread(run, env, "import", "examples", str(EXAMPLES))
        assert code == 0, err
        settings = cluster_settings(processes.url)
        repository = Repository(client, PSEUDONYMS)
        url = await form_link(repository, links_for(settings), "cust-1001")
        app: Litestar = create_app(make_settings(processes.url, redis_cluster=True))
        async with AsyncTestClient(app=app, base_url=PUBLIC_URL) as http:
            assert "Matti" in (await http.get(url)).text
            admin = await key_headers(repository, Scope.CONSENT)
            withdrawal = {"purpose": "personalization", "action": "withdrawn"}
            consent_url = f"{ADMIN_PATH}/customers/cust-1001/consent"
            answer = await http.post(consent_url, headers=admin, json=withdrawal)
            assert answer.status_code == 201, answer.text
            # Right after the 201: the withdrawal must survive its primary.
            processes.kill(processes.primary_port_for(customer_key("cust-1001")))
            statuses = set()
            healed = False
            for _ in range(300):  # at most about a minute
                page = await http.get(url)
                statuses.add(page.status_code)
                if page.status_code == 200:
                    healed = True
                    break
                await asyncio.sleep(0.2)
            assert statuses <= {200, 503}
            assert healed
            assert "Matti" not in page.text  # the withdrawal is in force after the failover
    finally:
        await client.aclose()
        processes.stop()


async def test_a_durable_write_to_a_slot_the_client_knows_no_node_for_is_unavailable(
    cluster_url: str, cluster_repository: Repository
) -> None:
    """Mid-failover a slot can be without a node in the client's map: a consent change, and the
    wait an erasure or a revocation ends with, fail closed (StoreUnavailable, a 503), never with
    the cluster client's own error (a 500)."""
    await import_directory(cluster_repository, EXAMPLES)
    client = connect(cluster_url, timeout_seconds=2, retries=0, cluster=True)
    try:
        cluster_client = cast("AsyncRedisCluster", client)
        await cluster_client.initialize()
        slot = cluster_client.keyslot(customer_key("cust-1001"))
        cluster_client.nodes_manager.slots_cache.pop(slot)
        repository = Repository(client, PSEUDONYMS)
        withdrawal = ConsentEvent(
            "personalization", ConsentAction.WITHDRAWN, 1.0, ConsentSource.ADMIN
        )
        with pytest.raises(StoreUnavailable):
            await repository.record_consent("cust-1001", withdrawal)
        with pytest.raises(StoreUnavailable):
            await repository._confirm_replicated([customer_key("cust-1001")])
    finally:
        await client.aclose()
