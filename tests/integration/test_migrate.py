"""`prefill migrate` moves a deployment written under the old key schema (`pf:{c:<id>}:…`, one
audit stream, `pf:{erased}:…`) to the bucket layout: completely, once, and again after a cut."""

from __future__ import annotations

from typing import cast

import msgspec

from prefill.models import (
    ChangeEvent,
    ChangeKind,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Customer,
)
from prefill.store import Repository
from prefill.store.keys import (
    consent_requests_key,
    customer_key,
    customer_refusals_key,
    feed_key_of,
)
from prefill.store.legacy import legacy_key
from tests.conftest import PSEUDONYMS
from tests.helpers import OLD_SCHEMA_DAY as DAY
from tests.helpers import (
    feed_entries,
    run,
    stored_customer,
    stored_history,
    write_old_schema,
    write_several_keys,
)
from tests.topology import sync_client


def test_migrate_moves_old_data_once_and_resumes_after_a_cut(
    env: dict[str, str], redis_url: str
) -> None:
    with sync_client(redis_url) as client:
        write_old_schema(client, PSEUDONYMS)
        # A run cut off midway: one of old-2's keys is moved already (as migrate moves a key:
        # the two names are in different slots, so no RENAME on a cluster).
        old_consent = "pf:{c:old-2}:consent"
        moved = cast("bytes", client.dump(old_consent))
        client.restore(legacy_key("old-2", "consent"), 0, moved)
        client.delete(old_consent)
    code, out, err = run(env, "migrate")
    assert code == 0, err
    assert "moved 2 customer(s), 1 tombstone(s), 3 audit entries, 1 day(s)" in out
    assert "2 customers moved" in err
    with sync_client(redis_url) as client:
        left = [k for k in client.scan_iter(count=1000) if b"{c:" in k or b"{erased}" in k]
        assert left == []
        assert client.exists("pf:{audit}:events", f"pf:{{audit}}:refused:{DAY}") == 0
        assert 0 < client.ttl(customer_refusals_key("old-1")) <= 3600  # the expiry moves too
    again = run(env, "migrate")
    assert again[0] == 0
    assert "moved 0 customer(s), 0 tombstone(s), 0 audit entries, 0 day(s)" in again[1]


async def test_the_migrated_data_reads_as_it_was_written(
    env: dict[str, str], redis_url: str, repository: Repository
) -> None:
    import asyncio

    with sync_client(redis_url) as client:
        write_old_schema(client, PSEUDONYMS)
    code, _, err = await asyncio.to_thread(run, env, "migrate")
    assert code == 0, err
    old = await repository.get_customer("old-1")
    assert old is not None
    assert (old.first_name, old.generation) == ("Old1", 3)
    consents = (await repository.current_consents(["old-2"]))["old-2"]
    assert consents["personalization"].action is ConsentAction.GRANTED
    assert len(await repository.consent_history("old-1")) == 1
    assert await repository.customer_refusals("old-1") == {f"{DAY}:page:expired": 2}
    assert [e.customer_id for e in await repository.audit_entries(customer_id="old-2")] == ["old-2"]
    assert {e.customer_id for e in await repository.audit_entries()} == {"old-1", "old-2", ""}
    assert sorted((await repository.list_customer_ids(0, 100)).ids) == ["old-1", "old-2"]
    tombstone = (await repository.tombstones(["gone-1"]))["gone-1"]
    assert tombstone.generation_floor == 5
    assert await repository.refusal_counts(DAY) == {"page:forged": 4}
    # An erasure after the move finds the customer's audit entries in their shard.
    assert await repository.erase_customer("old-1") is not None
    assert {e.customer_id for e in await repository.audit_entries()} == {"old-2", ""}


def test_migrate_makes_a_customer_in_several_keys_one_hash_once(
    env: dict[str, str], redis_url: str
) -> None:
    first = Customer(id="two-1", email="a@x.example", first_name="Aino", generation=2)
    second = Customer(id="two-2", email="b@x.example", attributes={"segment": "s1"})
    grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.25, ConsentSource.IMPORT)
    withdrawal = msgspec.structs.replace(grant, action=ConsentAction.WITHDRAWN, at=2.5)
    marketing = ConsentEvent("email_marketing", ConsentAction.GRANTED, 3.0, ConsentSource.FORM)
    with sync_client(redis_url) as client:
        write_several_keys(client, first, [grant, marketing, withdrawal])
        code, out, err = run(env, "migrate")
        assert code == 0, err
        assert "made 1 customer(s) one hash" in out
        # As if that run had been cut off before the second customer: the next one does it.
        write_several_keys(client, second, [grant])
        code, out, _ = run(env, "migrate")
        assert "made 1 customer(s) one hash" in out
        assert run(env, "migrate")[1].endswith("made 0 customer(s) one hash\n")
        left = sorted(k.decode() for k in client.scan_iter(count=1000) if b":c:two-" in k)
        assert left == [customer_key("two-1"), customer_key("two-2")]  # the old keys are gone
        assert stored_customer(client, "two-1") == msgspec.to_builtins(first)
        assert stored_customer(client, "two-2") == msgspec.to_builtins(second)
        assert stored_history(client, "two-1") == [grant, marketing, withdrawal]
        assert client.object("encoding", customer_key("two-1")) in (b"ziplist", b"listpack")


async def test_a_migrated_customer_reads_and_writes_as_any_other(
    env: dict[str, str], redis_url: str, repository: Repository
) -> None:
    import asyncio

    grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.25, ConsentSource.IMPORT)
    with sync_client(redis_url) as client:
        write_several_keys(client, Customer(id="two-1", email="a@x.example"), [grant])
    assert (await asyncio.to_thread(run, env, "migrate"))[0] == 0
    assert (await repository.current_consents(["two-1"]))["two-1"] == {"personalization": grant}
    assert (await repository.list_customer_ids(0, 100)).ids == ["two-1"]
    withdrawal = msgspec.structs.replace(grant, action=ConsentAction.WITHDRAWN, at=2.0)
    assert (await repository.record_consent("two-1", withdrawal)).status == "recorded"
    assert await repository.consent_history("two-1") == [grant, withdrawal]
    tombstone = await repository.erase_customer("two-1")
    assert tombstone is not None
    assert tombstone.withdrawn == ["personalization"]
    assert tombstone.generation_floor == 1


async def test_a_campaigns_funnel_from_its_own_slot_moves_into_a_shard_and_reads_the_same(
    env: dict[str, str], redis_url: str, repository: Repository
) -> None:
    import asyncio

    old = "pf:{funnel:old-campaign}"
    with sync_client(redis_url) as client:
        client.hset(f"{old}:counts", mapping={"issued": 5, "opened": 3})
        client.pfadd(f"{old}:people:opened", "a", "b")
        client.set(f"{old}:salt", "s", ex=3600)
    before = await repository.funnel_counters(["old-campaign"])
    assert before["old-campaign"] == ({}, {"opened": 0, "prefilled": 0, "submitted": 0})
    code, out, err = await asyncio.to_thread(run, env, "migrate")
    assert code == 0, err
    assert "1 funnel(s) into shards" in out
    counts, people = (await repository.funnel_counters(["old-campaign"]))["old-campaign"]
    assert (counts, people["opened"]) == ({"issued": 5, "opened": 3}, 2)
    with sync_client(redis_url) as client:
        assert list(client.scan_iter(match="pf:{funnel:*")) == []
        assert 0 < client.ttl("pf:{b:0}:funnel:old-campaign:salt") <= 3600
    code, out, _ = await asyncio.to_thread(run, env, "migrate")
    assert "0 funnel(s) into shards" in out
    assert (await repository.funnel_counters(["old-campaign"]))["old-campaign"][0]["issued"] == 5


async def test_the_one_change_feed_stream_moves_into_its_shards_in_order(
    env: dict[str, str], redis_url: str
) -> None:
    import asyncio

    changes = [
        ChangeEvent(kind=ChangeKind.CUSTOMER, customer_id=customer_id, at=float(n))
        for n, customer_id in enumerate(["cust-1001", "cust-1002", "cust-1001", "cust-1003"])
    ]
    with sync_client(redis_url) as client:
        written = [client.xadd("pf:{feed}:changes", {"e": msgspec.json.encode(c)}) for c in changes]
    code, out, err = await asyncio.to_thread(run, env, "migrate")
    assert code == 0, err
    assert "4 feed entries into shards" in out
    with sync_client(redis_url) as client:
        assert client.exists("pf:{feed}:changes") == 0
        assert feed_entries(client) == [msgspec.json.encode(c) for c in changes]
        # Each under its own id, in its customer's shard: cust-1001's two in one stream.
        own = [entry_id for entry_id, _ in client.xrange(feed_key_of("cust-1001"))]
        assert own == [written[0], written[2]]
    code, out, _ = await asyncio.to_thread(run, env, "migrate")
    assert "0 feed entries into shards" in out


async def test_a_consent_request_retried_after_the_migration_replays_its_first_outcome(
    env: dict[str, str], redis_url: str, repository: Repository
) -> None:
    import asyncio

    grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.25, ConsentSource.IMPORT)
    withdrawal = msgspec.structs.replace(grant, action=ConsentAction.WITHDRAWN, at=2.0)
    with sync_client(redis_url) as client:
        write_several_keys(client, Customer(id="two-1", email="a@x.example"), [grant, withdrawal])
        # The withdrawal's request outcome as the several-keys layout stored it: JSON event.
        outcome = b"fp-1|recorded|" + msgspec.json.encode(withdrawal)
        client.hset(consent_requests_key("two-1"), "request-1", outcome)
        client.expire(consent_requests_key("two-1"), 3600)
    assert (await asyncio.to_thread(run, env, "migrate"))[0] == 0
    retry = await repository.record_consent("two-1", withdrawal, "request-1", "fp-1")
    assert (retry.status, retry.first_status, retry.event) == ("replayed", "recorded", withdrawal)
    with sync_client(redis_url) as client:
        assert 0 < client.ttl(consent_requests_key("two-1")) <= 3600
