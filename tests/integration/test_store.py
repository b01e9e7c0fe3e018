"""The store's layout at work: customers listed from their buckets' index sets, the audit read
back merged from its shards in time order."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from prefill.models import AuditEntry, AuditKind, CampaignState, ConsentEvent, Customer
from prefill.store import Repository
from prefill.store.keys import BUCKETS, audit_shard_key, bucket_of, catalog_version_copy_key


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
