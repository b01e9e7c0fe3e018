"""The key schema's promises that Redis Cluster relies on (store/keys.py)."""

from __future__ import annotations

from collections import Counter

from redis.crc import key_slot

from prefill.store import keys


def test_a_customers_keys_their_index_and_their_audit_shard_share_one_slot() -> None:
    customer_id = "cust-1001"
    bucket = keys.bucket_of(customer_id)
    together = [
        *keys.customer_keys(customer_id),
        keys.customer_index_key(bucket),
        keys.audit_shard_key(bucket),
    ]
    assert len({key_slot(key.encode()) for key in together}) == 1


def test_the_bucket_of_an_id_never_changes() -> None:
    # Stored key names derive from it: a different bucket for a known id would hide every
    # customer stored so far (only a migration may move them).
    assert keys.BUCKETS == 1024
    assert [keys.bucket_of(i) for i in ("cust-1001", "crm-000001", "Ääkkönen")] == [114, 435, 321]


def test_customers_spread_over_the_buckets_and_the_slots() -> None:
    ids = [f"crm-{n:06d}" for n in range(20_000)]
    per_bucket = Counter(keys.bucket_of(i) for i in ids)
    assert len(per_bucket) == keys.BUCKETS
    assert max(per_bucket.values()) < 3 * 20_000 / keys.BUCKETS
    slots = {key_slot(keys.customer_key(i).encode()) for i in ids}
    assert len(slots) == keys.BUCKETS  # one slot per bucket, all of them distinct


def test_a_tombstone_lies_in_its_pseudonyms_bucket_not_its_customers() -> None:
    pseudonym = "5f2b" * 8
    assert keys.tombstone_key(pseudonym).startswith(f"pf:{{b:{keys.bucket_of(pseudonym)}}}:")
