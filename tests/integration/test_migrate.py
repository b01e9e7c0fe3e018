"""`prefill migrate` moves a deployment written under the old key schema (`pf:{c:<id>}:…`, one
audit stream, `pf:{erased}:…`) to the bucket layout: completely, once, and again after a cut."""

from __future__ import annotations

import redis

from prefill.models import (
    ConsentAction,
)
from prefill.store import Repository
from prefill.store.keys import consent_key, customer_refusals_key
from tests.conftest import PSEUDONYMS
from tests.helpers import OLD_SCHEMA_DAY as DAY
from tests.helpers import run, write_old_schema


def test_migrate_moves_old_data_once_and_resumes_after_a_cut(
    env: dict[str, str], redis_url: str
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        write_old_schema(client, PSEUDONYMS)
        # A run cut off midway: one of old-2's keys is moved already.
        client.rename("pf:{c:old-2}:consent", consent_key("old-2"))
    code, out, err = run(env, "migrate")
    assert code == 0, err
    assert "moved 2 customer(s), 1 tombstone(s), 3 audit entries, 1 day(s)" in out
    assert "2 customers moved" in err
    with redis.Redis.from_url(redis_url) as client:
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

    with redis.Redis.from_url(redis_url) as client:
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
