"""The store's layout at work: customers listed from their buckets' index sets, the audit read
back merged from its shards in time order."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
from redis.asyncio import Redis

from prefill.models import (
    AuditEntry,
    AuditKind,
    CampaignState,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Customer,
)
from prefill.store import CustomerPage, Repository
from prefill.store.keys import (
    BUCKETS,
    audit_shard_key,
    bucket_of,
    catalog_version_copy_key,
    customer_key,
    run_seen_key,
)
from prefill.store.records import UPDATED_AT
from prefill.store.scripts import ScriptCall
from tests.helpers import append_consent
from tests.topology import sync_client


def no_consent(_: dict[str, dict[str, ConsentEvent]]) -> dict[str, list[ConsentEvent]]:
    return {}


def customers(count: int) -> list[Customer]:
    return [Customer(id=f"crm-{n:04d}", email=f"p{n}@example.com") for n in range(count)]


async def list_all(repository: Repository, count: int) -> list[str]:
    listed, cursor = [], 0
    while True:
        page = await repository.list_customer_ids(cursor, count)
        listed += page.ids
        if (cursor := page.cursor) == 0:
            return listed


async def test_every_customer_is_listed_once_across_the_buckets(repository: Repository) -> None:
    saved = customers(300)
    await repository.save_customers(saved, no_consent)
    assert len({bucket_of(c.id) for c in saved}) > 200  # the listing crosses many buckets
    listed = await list_all(repository, count=7)
    assert sorted(listed) == [c.id for c in saved]
    assert await repository.erase_customer("crm-0007") is not None
    assert "crm-0007" not in await list_all(repository, count=100)


async def test_an_empty_store_lists_nobody_in_one_page(repository: Repository) -> None:
    page = await repository.list_customer_ids(0, 100)
    assert (page.ids, page.cursor) == ([], 0)


async def test_the_audit_merges_its_shards_newest_first(repository: Repository) -> None:
    ids = ["cust-1001", "cust-1002", "cust-1003", "crm-0001", "", "cust-1001"]
    assert len({audit_shard_key(bucket_of(i)) for i in ids if i}) >= 3
    recorded, before, since = [], 0.0, 0.0
    for n, customer_id in enumerate(ids):
        if n == 3:
            before = time.time()
            await asyncio.sleep(0.05)  # the stream ids of the later half are a clear step later
            since = time.time()
        entry = AuditEntry(
            kind=AuditKind.ADMIN, at=time.time(), customer_id=customer_id, action=f"step-{n}"
        )
        await repository.record_audit(entry)
        recorded.append(entry)
    newest_first = recorded[::-1]
    assert await repository.audit_entries() == newest_first
    assert await repository.audit_entries(count=4) == newest_first[:4]
    own = await repository.audit_entries(customer_id="cust-1001")
    assert [e.action for e in own] == ["step-5", "step-0"]
    assert await repository.audit_entries(since=since) == newest_first[:3]
    assert await repository.audit_entries(until=before) == newest_first[3:]


async def test_every_bucket_holds_the_version_of_the_last_catalog_change(
    repository: Repository, redis_client: Redis, examples: None
) -> None:
    assert await repository.set_campaign_state("spring-summit-2027-invite", CampaignState.REVOKED)
    version = (await repository.load_catalog()).version
    copies = [await redis_client.get(catalog_version_copy_key(b)) for b in range(BUCKETS)]
    assert set(copies) == {str(version).encode()}
    # A link in any bucket sees it, so the revocation is in force for every customer.
    state = await repository.read_link_state("crm-0001")
    assert state.catalog_version == version == await repository.catalog_version()


async def test_an_erased_customer_imported_again_keeps_their_withdrawal_on_every_import(
    repository: Repository,
) -> None:
    customer = Customer(id="crm-0001", email="p1@example.com")
    grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.0, ConsentSource.IMPORT)

    def grant_unless_withdrawn(
        current: dict[str, dict[str, ConsentEvent]],
    ) -> dict[str, list[ConsentEvent]]:
        state = current[customer.id].get("personalization")
        withdrawn = state is not None and state.action is ConsentAction.WITHDRAWN
        return {} if withdrawn else {customer.id: [grant]}

    await repository.save_customers([customer], grant_unless_withdrawn)
    withdrawal = msgspec.structs.replace(grant, action=ConsentAction.WITHDRAWN, at=2.0)
    assert (await repository.record_consent(customer.id, withdrawal)).status == "recorded"
    assert await repository.erase_customer(customer.id) is not None
    for status in ("created", "unchanged"):  # the second import reads the tombstone too
        (change,) = await repository.write_customer_batch([customer], grant_unless_withdrawn)
        assert (change.status, change.consents) == (status, [])
    assert await repository.consent_history(customer.id) == []


async def test_a_retention_stamp_racing_an_erasure_neither_revives_nor_hides_the_tombstone(
    repository: Repository, redis_client: Redis
) -> None:
    customer = Customer(id="crm-0003", email="p3@example.com")
    grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.0, ConsentSource.IMPORT)
    await repository.save_customers([customer], lambda _: {customer.id: [grant]})
    withdrawal = msgspec.structs.replace(grant, action=ConsentAction.WITHDRAWN, at=2.0)
    assert (await repository.record_consent(customer.id, withdrawal)).status == "recorded"
    assert await repository.erase_customer(customer.id) is not None
    # Retention listed the customer before the erasure and stamps them after it.
    await repository.stamp_updated_at([customer.id])
    assert await redis_client.exists(customer_key(customer.id)) == 0
    # Even a stray field left there by older code does not hide the tombstone.
    await redis_client.hset(customer_key(customer.id), UPDATED_AT, "1")
    (state,) = (await repository.customer_states([customer.id])).values()
    assert state.tombstone is not None
    assert state.tombstone.withdrawn == ["personalization"]

    def grant_unless_withdrawn(
        current: dict[str, dict[str, ConsentEvent]],
    ) -> dict[str, list[ConsentEvent]]:
        withdrawn = current[customer.id].get("personalization")
        return {} if withdrawn else {customer.id: [grant]}

    (change,) = await repository.write_customer_batch([customer], grant_unless_withdrawn)
    assert change.consents == []
    assert await repository.consent_history(customer.id) == []


async def test_a_record_written_again_loses_the_fields_it_no_longer_has(
    repository: Repository,
) -> None:
    full = Customer(
        id="crm-0002",
        email="p2@example.com",
        company="Oy Ab",
        locale="fi",
        owner_id="aino-virtanen",
        attributes={"segment": "s1", "tier": "gold"},
    )
    await repository.save_customers([full], no_consent)
    fewer = Customer(id="crm-0002", email="p2@example.com", attributes={"tier": "silver"})
    await repository.save_customers([fewer], no_consent)
    assert await repository.get_customer("crm-0002") == fewer


async def test_each_customer_id_names_everyone_once_even_when_a_scan_repeats_one(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = customers(3000)  # about three a bucket: buckets are split across pages of two
    await repository.save_customers(saved, no_consent)
    listed = repository.list_customer_ids
    previous: list[str] = []
    repeats = 0

    async def repeating(cursor: int = 0, count: int = 100) -> CustomerPage:
        # A set resized while it is scanned returns some members again on a later page.
        nonlocal previous, repeats
        page = await listed(cursor, count)
        buckets = {bucket_of(i) for i in page.ids}
        again = [i for i in previous if bucket_of(i) in buckets]
        repeats += len(again)
        previous = page.ids
        return CustomerPage(ids=again + page.ids, cursor=page.cursor)

    monkeypatch.setattr(repository, "list_customer_ids", repeating)
    named = [i async for page in repository.each_customer_id(2) for i in page]
    assert repeats > 0
    assert sorted(named) == [c.id for c in saved]


async def test_a_write_of_nothing_but_activity_moves_updated_at_and_not_the_version(
    repository: Repository, redis_client: Redis
) -> None:
    customer = Customer(id="crm-0004", email="p4@example.com")
    await repository.save_customers([customer], no_consent)
    key = customer_key(customer.id)
    version = await redis_client.hget(key, "v")
    await redis_client.hset(key, UPDATED_AT, "1")
    # A resubmitted form: saved again unchanged (activity), as submits and admin PUTs do.
    await asyncio.gather(*(repository.save_customers([customer], no_consent) for _ in range(8)))
    assert await redis_client.hget(key, "v") == version  # nothing for concurrent writers to redo
    assert int(await redis_client.hget(key, UPDATED_AT) or 0) > 1
    assert await repository.get_customer(customer.id) == customer
    # An erased customer is not brought back by it.
    assert await repository.erase_customer(customer.id) is not None
    saved = await repository.save_customers([customer], no_consent, only_existing=True)
    assert saved.records == 0
    assert await redis_client.exists(key) == 0


async def test_a_withdrawal_racing_a_batch_stops_only_its_own_customer(
    repository: Repository, redis_url: str
) -> None:
    """Each customer of a batch is its own compare-and-set, also where the batch goes to Redis
    as one command: the one changed meanwhile is decided again, the others are written once."""
    batch = customers(5)
    await repository.save_customers(batch, no_consent)
    raced = batch[2].id
    decisions = 0

    def grant_unless_withdrawn(
        current: dict[str, dict[str, ConsentEvent]],
    ) -> dict[str, list[ConsentEvent]]:
        nonlocal decisions
        decisions += 1
        if decisions == 1:  # the customer withdraws while the batch is being decided
            withdrawal = ConsentEvent(
                "personalization", ConsentAction.WITHDRAWN, time.time(), ConsentSource.FORM
            )
            with sync_client(redis_url) as other:
                append_consent(other, raced, withdrawal)
        grant = ConsentEvent("personalization", ConsentAction.GRANTED, 1.0, ConsentSource.IMPORT)
        return {
            customer_id: []
            if (state := purposes.get("personalization"))
            and state.action is ConsentAction.WITHDRAWN
            else [grant]
            for customer_id, purposes in current.items()
        }

    changes = await repository.write_customer_batch(batch, grant_unless_withdrawn)
    assert decisions == 2  # the raced customer alone was decided again
    assert [len(change.consents) for change in changes] == [1, 1, 0, 1, 1]
    states = await repository.current_consents([c.id for c in batch])
    assert [states[c.id]["personalization"].action for c in batch] == [
        ConsentAction.GRANTED,
        ConsentAction.GRANTED,
        ConsentAction.WITHDRAWN,
        ConsentAction.GRANTED,
        ConsentAction.GRANTED,
    ]
    assert [len(await repository.consent_history(c.id)) for c in batch] == [1, 1, 1, 1, 1]


async def test_a_script_call_that_ran_is_not_run_again_when_another_lost_its_script(
    repository: Repository, redis_client: Redis
) -> None:
    """A batch whose calls reach a server (or a cluster node) that lost one script: only the
    calls answered NOSCRIPT are sent again once it is loaded."""
    await redis_client.script_flush()
    scripts = repository._scripts
    await redis_client.script_load(scripts.first_seen.script)
    seen = ScriptCall(scripts.first_seen, [run_seen_key("a-run")], [60, "cust-1", 7])
    read = ScriptCall(scripts.read_hashes, [customer_key("cust-2")], [])
    first, hashes = await repository._run_scripts([seen, read])
    assert first == []  # new: sent once (a second run would find it seen on line 7)
    assert hashes == [[]]
