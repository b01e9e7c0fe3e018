"""The key schema: every Redis key prefill writes, and the hash tags that decide their slots.

All keys start with `pf:`; the part in braces is the Redis Cluster hash tag, so one customer's
keys live in one slot and can change together in MULTI or one script:

| key                                | type   | holds                                     |
|------------------------------------|--------|-------------------------------------------|
| `pf:{b:<n>}:c:<id>`                | hash   | the record, consent history and state     |
| `pf:{b:<n>}:c:<id>:refused`        | hash   | `<day>:<channel>:<cause>` -> count        |
| `pf:{b:<n>}:c:<id>:audit`          | stream | the customer's audit entries (an index)   |
| `pf:{b:<n>}:c:<id>:requests`       | hash   | request id -> idempotent write's outcome  |
| `pf:{b:<n>}:customers`             | set    | the bucket's customer ids (listing)       |
| `pf:{b:<n>}:audit`                 | stream | the bucket's audit shard, AuditEntry JSON |
| `pf:{b:<n>}:catalog:version`       | string | a copy of the catalog version (below)     |
| `pf:{b:<p>}:erased:<pseudonym>`    | string | erasure tombstone                         |
| `pf:{keys}:<key id>`               | string | ApiKey JSON (scopes, SHA-256 of secret)   |
| `pf:{feed:<k>}:changes`            | stream | the change feed's shard k: ChangeEvent JSON in `e` |
| `pf:{catalog}:version`             | string | bumped by every catalog change            |
| `pf:{catalog}:forms`               | hash   | form id -> Form JSON                      |
| `pf:{catalog}:campaigns`           | hash   | campaign id -> Campaign JSON              |
| `pf:{catalog}:contacts`            | hash   | contact id -> ContactPerson JSON          |
| `pf:{catalog}:photo:<id>`          | string | a contact person's JPEG photo             |
| `pf:{b:<p>}:refused:<day>`         | hash   | `<channel>:<cause>` -> unsigned refusals  |
| `pf:{health}:probe`                | string | readiness checks' write, for a minute     |
| `pf:{<tag>}:replicated`            | string | a marker a replica confirms, for a minute |
| `pf:{b:<n>}:health:probe`          | string | the same, on each primary of a cluster    |
| `pf:{b:<s>}:funnel:<cmp>:counts`   | hash   | a campaign's funnel counters, one shard   |
| `pf:{b:<s>}:funnel:<cmp>:people:<stage>` | HLL | distinct people, salted pseudonyms    |
| `pf:{b:<s>}:funnel:<cmp>:salt`     | string | the shard's salt; expires with the links  |
| `pf:{import:<run>}:seen`           | hash   | id -> first line, while a run runs        |
| `pf:{b:<p>}:rate:<pseud>`          | string | unsigned links per address, this window   |
| `pf:{rl:<pseud>}:<kind>`           | string | a limit's count this window               |

Buckets: a customer's keys live in bucket `<n>` = `bucket_of(<id>)`, one of `BUCKETS` (1024)
fixed buckets, so that a Redis Cluster spreads customers over all its slots while everything
one script or MULTI touches stays in one: a customer's keys, the bucket's index of its
customers, and the bucket's audit shard (an audit entry goes into the shard and the customer's
own index under one id, in one script). An audit entry that names no customer goes to a random
shard. Reading everyone's audit merges the shards by stream id. Every link reads the catalog
version: each bucket holds a copy, which a link reads with its customer (catalog.py). A
tombstone's bucket `<p>` is that of its pseudonym, not of the id: where it lies says nothing
about whom it is for. So are the anonymous refusal counts' (the bucket of the client address's
pseudonym, which the rate counter beside them is keyed by), summed over the buckets to read.

The audit streams hold disclosures and changes. Refused links are counted per UTC day instead
(under their customer when validly signed, anonymously otherwise): anyone can send any number
of them, and they must cost constant space. Stream entries and counts are kept for the audit
retention (`PREFILL_AUDIT_RETENTION_DAYS`) and trimmed by age, never by count.

The customer hash's fields (records.py): the record's fields, the link generation, `updated_at`
(Unix seconds of the last write by an import, the admin API or a form, which the retention job
reads), a write version, the consent history (append-only) and the state derived from it, in one
hash so that a customer costs one key and a link reads them in one command.

Retention: `refused`, `audit` and `requests` expire by TTL (audit retention; 24 hours for
requests); the streams are trimmed by age on every write and by `prefill retention`; customer
records are erased by `prefill retention` when not updated for `PREFILL_CUSTOMER_RETENTION_DAYS`;
tombstones expire after the audit retention; rate limit counters expire with their window
(ratelimit.py: minutes), keyed by a keyed pseudonym of the address or of the link's identity,
never the address, token or customer id itself; funnel keys expire after the audit retention
without activity; an import's `seen` hash is deleted when it ends (and expires after a day).
docs/record-of-processing.md lists it all.

The funnel stores no id: counters, and HyperLogLogs of keyed pseudonyms mixed with a campaign's
salt, which estimate how many distinct people reached a stage and cannot list anyone. While the
salt lives, the holder of the service's keys could test one given person; once it expires
(with the campaign's links), nobody can. Each campaign's funnel is in `FUNNEL_SHARDS` (64)
shards, so no one slot takes every link's count: shard `<s>` = the customer's bucket modulo 64,
kept in bucket `<s>`'s slot. A person is counted in their shard only, with that shard's salt, so
the shards' people are disjoint and their counts add up; counts of no one (scanners, links
issued) go to each shard in turn. Reading funnels sums the shards: one script per shard for all
campaigns (64 rather than 1024: the dashboard reads every campaign's).

An erasure tombstone is keyed by a keyed HMAC of the customer id (pseudonyms.py): it outlives the
customer so that a re-import neither revives the erased customer's links nor re-grants consent
they had withdrawn, and it cannot be linked to the id without the service's secret keys.

Consent state is written together with its history entry by one script on the customer's hash,
so the derived state never disagrees with the history (imports too: see `write_customer_batch`).
"""

from __future__ import annotations

import zlib

from prefill.ratelimit import LimitKind

PREFIX = "pf:"
CATALOG_VERSION = f"{PREFIX}{{catalog}}:version"
CATALOG_FORMS = f"{PREFIX}{{catalog}}:forms"
CATALOG_CAMPAIGNS = f"{PREFIX}{{catalog}}:campaigns"
CATALOG_CONTACTS = f"{PREFIX}{{catalog}}:contacts"
FEED_SHARDS = 16
"""The change feed's streams: a customer's changes all go to one, in order; consumers read
every one, merged by stream id (docs/change-feed.md)."""
HEALTH_PROBE = f"{PREFIX}{{health}}:probe"
BUCKETS = 1024
FUNNEL_SHARDS = 64
"""Fixed forever: every customer key's name derives from it, so changing it moves every key
(a migration like `prefill migrate`). 1024 buckets spread evenly over any cluster's nodes."""


def bucket_of(value: str) -> int:
    """The bucket of a customer id (or a pseudonym): CRC-32, the same in every process, on
    every machine and in every version of Python, unlike `hash()`."""
    return zlib.crc32(value.encode()) % BUCKETS


def customer_key(customer_id: str) -> str:
    """The customer's hash: record, consent history and state (records.py)."""
    return f"{PREFIX}{{b:{bucket_of(customer_id)}}}:c:{customer_id}"


def _in_bucket(customer_id: str, name: str) -> str:
    return f"{customer_key(customer_id)}:{name}"


def customer_refusals_key(customer_id: str) -> str:
    return _in_bucket(customer_id, "refused")


def customer_audit_key(customer_id: str) -> str:
    return _in_bucket(customer_id, "audit")


def consent_requests_key(customer_id: str) -> str:
    return _in_bucket(customer_id, "requests")


def customer_keys(customer_id: str) -> list[str]:
    """Every key that holds data about one customer: what export reads and erasure deletes."""
    return [
        key_of(customer_id)
        for key_of in (
            customer_key,
            customer_refusals_key,
            customer_audit_key,
            consent_requests_key,
        )
    ]


def catalog_version_copy_key(bucket: int) -> str:
    return f"{PREFIX}{{b:{bucket}}}:catalog:version"


def health_probe_key(bucket: int) -> str:
    """On a cluster, readiness writes one of these on each primary."""
    return f"{PREFIX}{{b:{bucket}}}:health:probe"


def customer_index_key(bucket: int) -> str:
    return f"{PREFIX}{{b:{bucket}}}:customers"


def audit_shard_key(bucket: int) -> str:
    return f"{PREFIX}{{b:{bucket}}}:audit"


def tombstone_key(pseudonym: str) -> str:
    return f"{PREFIX}{{b:{bucket_of(pseudonym)}}}:erased:{pseudonym}"


def api_key_key(key_id: str) -> str:
    return f"{PREFIX}{{keys}}:{key_id}"


def refusal_counts_key(day: str, bucket: int) -> str:
    return f"{PREFIX}{{b:{bucket}}}:refused:{day}"


def photo_key(contact_id: str) -> str:
    return f"{PREFIX}{{catalog}}:photo:{contact_id}"


def feed_shard_key(shard: int) -> str:
    return f"{PREFIX}{{feed:{shard}}}:changes"


FEED_STREAMS = [feed_shard_key(shard) for shard in range(FEED_SHARDS)]


def feed_key_of(customer_id: str) -> str:
    """The feed shard of the customer's changes: the customer's bucket modulo FEED_SHARDS."""
    return feed_shard_key(bucket_of(customer_id) % FEED_SHARDS)


def funnel_shard_of(customer_id: str) -> int:
    return bucket_of(customer_id) % FUNNEL_SHARDS


def funnel_counts_key(campaign_id: str, shard: int) -> str:
    return f"{PREFIX}{{b:{shard}}}:funnel:{campaign_id}:counts"


def funnel_people_key(campaign_id: str, shard: int, stage: str) -> str:
    return f"{PREFIX}{{b:{shard}}}:funnel:{campaign_id}:people:{stage}"


def funnel_salt_key(campaign_id: str, shard: int) -> str:
    return f"{PREFIX}{{b:{shard}}}:funnel:{campaign_id}:salt"


def run_seen_key(run_id: str) -> str:
    return f"{PREFIX}{{import:{run_id}}}:seen"


def refused_rate_key(pseudonym: str) -> str:
    """In the slot of its bucket's anonymous refusal counts: one script updates both."""
    return f"{PREFIX}{{b:{bucket_of(pseudonym)}}}:rate:{pseudonym}"


def rate_key(kind: LimitKind, pseudonym: str) -> str:
    return f"{PREFIX}{{rl:{pseudonym}}}:{kind.value}"


def replica_marker_key(beside: str) -> str:
    """A marker in the slot of `beside` (its hash tag): a replica that has it has every write
    made before it to that primary (store/durability.py)."""
    tag = beside[beside.index("{") + 1 : beside.index("}")]
    return f"{PREFIX}{{{tag}}}:replicated"
