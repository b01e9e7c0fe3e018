"""The key schema: every Redis key prefill writes, and the hash tags that decide their slots.

All keys start with `pf:`; the part in braces is the Redis Cluster hash tag, so one customer's
keys live in one slot and can change together in MULTI or one script:

| key                       | type   | holds                                               |
|---------------------------|--------|-----------------------------------------------------|
| `pf:{c:<id>}:customer`    | hash   | `record`: Customer JSON; `generation`: link counter |
| `pf:{c:<id>}:consent`     | hash   | purpose -> latest ConsentEvent JSON (derived state) |
| `pf:{c:<id>}:consent:log` | list   | every ConsentEvent JSON, oldest first (append-only) |
| `pf:{c:<id>}:refused`     | hash   | `<day>:<channel>:<cause>` -> refused-link count     |
| `pf:{c:<id>}:audit`       | stream | this customer's audit entries (a per-customer index) |
| `pf:{c:<id>}:requests`    | hash   | request id -> outcome of an idempotent consent write |
| `pf:{erased}:<pseudonym>` | hash   | erasure tombstone: link generation floor, withdrawals |
| `pf:{keys}:<key id>`      | string | ApiKey JSON (scopes and the SHA-256 of the secret)  |
| `pf:{feed}:changes`       | stream | ChangeEvent JSON in field `e`: the change feed      |
| `pf:{catalog}:version`    | string | counter bumped by every catalog change              |
| `pf:{catalog}:forms`      | hash   | form id -> Form JSON                                |
| `pf:{catalog}:campaigns`  | hash   | campaign id -> Campaign JSON                        |
| `pf:{catalog}:contacts`   | hash   | contact id -> ContactPerson JSON                    |
| `pf:{catalog}:photo:<id>` | string | a contact person's JPEG photo                       |
| `pf:{audit}:events`       | stream | AuditEntry JSON in field `e`, trimmed by age        |
| `pf:{audit}:refused:<day>` | hash  | `<channel>:<cause>` -> count of unsigned refusals   |
| `pf:{health}:probe`       | string | written by readiness checks, expires after a minute |
| `pf:{funnel:<cmp>}:counts` | hash  | a campaign's funnel counters (funnel.py)            |
| `pf:{funnel:<cmp>}:people:<stage>` | HLL | distinct people in a stage, salted pseudonyms   |
| `pf:{funnel:<cmp>}:salt`  | string | the campaign's salt for them; expires with its links |
| `pf:{import:<run>}:seen`  | hash   | customer id -> first line, while an import or mint runs |
| `pf:{audit}:rate:<pseud>` | string | unsigned links refused per client address, this window |
| `pf:{rl:<pseud>}:<kind>`  | string | a limit's count this window: a link's requests, etc. |

The audit stream holds disclosures and changes. Refused links are counted per UTC day instead
(under their customer when validly signed, anonymously otherwise): anyone can send any number
of them, and they must cost constant space. Stream entries and counts are kept for the audit
retention (`PREFILL_AUDIT_RETENTION_DAYS`) and trimmed by age, never by count.

The customer hash also holds `updated_at` (Unix seconds of the last write by an import, the admin
API or a form), which the retention job reads.

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
(with the campaign's links), nobody can.

An erasure tombstone is keyed by a keyed HMAC of the customer id (pseudonyms.py): it outlives the
customer so that a re-import neither revives the erased customer's links nor re-grants consent
they had withdrawn, and it cannot be linked to the id without the service's secret keys.

The `generation` field is the authority for a customer's link counter; the copy inside `record`
is ignored on read. Consent state is written together with its log entry in one MULTI, so the
derived state never disagrees with the history (imports too: see `write_customer_batch`).
"""

from __future__ import annotations

from prefill.ratelimit import LimitKind

PREFIX = "pf:"
CATALOG_VERSION = f"{PREFIX}{{catalog}}:version"
CATALOG_FORMS = f"{PREFIX}{{catalog}}:forms"
CATALOG_CAMPAIGNS = f"{PREFIX}{{catalog}}:campaigns"
CATALOG_CONTACTS = f"{PREFIX}{{catalog}}:contacts"
AUDIT_STREAM = f"{PREFIX}{{audit}}:events"
FEED_STREAM = f"{PREFIX}{{feed}}:changes"
HEALTH_PROBE = f"{PREFIX}{{health}}:probe"


def customer_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:customer"


def consent_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:consent"


def consent_log_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:consent:log"


def customer_refusals_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:refused"


def customer_audit_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:audit"


def consent_requests_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:requests"


def customer_keys(customer_id: str) -> list[str]:
    """Every key that holds data about one customer: what export reads and erasure deletes."""
    return [
        key_of(customer_id)
        for key_of in (
            customer_key,
            consent_key,
            consent_log_key,
            customer_refusals_key,
            customer_audit_key,
            consent_requests_key,
        )
    ]


def tombstone_key(pseudonym: str) -> str:
    return f"{PREFIX}{{erased}}:{pseudonym}"


def api_key_key(key_id: str) -> str:
    return f"{PREFIX}{{keys}}:{key_id}"


def refusal_counts_key(day: str) -> str:
    return f"{PREFIX}{{audit}}:refused:{day}"


def photo_key(contact_id: str) -> str:
    return f"{PREFIX}{{catalog}}:photo:{contact_id}"


def funnel_counts_key(campaign_id: str) -> str:
    return f"{PREFIX}{{funnel:{campaign_id}}}:counts"


def funnel_people_key(campaign_id: str, stage: str) -> str:
    return f"{PREFIX}{{funnel:{campaign_id}}}:people:{stage}"


def funnel_salt_key(campaign_id: str) -> str:
    return f"{PREFIX}{{funnel:{campaign_id}}}:salt"


def run_seen_key(run_id: str) -> str:
    return f"{PREFIX}{{import:{run_id}}}:seen"


def refused_rate_key(pseudonym: str) -> str:
    """In the anonymous refusal counts' slot: one script updates both."""
    return f"{PREFIX}{{audit}}:rate:{pseudonym}"


def rate_key(kind: LimitKind, pseudonym: str) -> str:
    return f"{PREFIX}{{rl:{pseudonym}}}:{kind.value}"
