"""The purposes prefill processes personal data for, and what it keeps for how long.

This is the one place they are defined: the consent gate checks the consent purposes, and the
record of processing (GDPR Art. 30) in docs/record-of-processing.md is generated from this module
(`prefill docs record-of-processing`), so the document cannot drift from the code.
"""

from __future__ import annotations

import enum

import msgspec


class ConsentPurpose(enum.StrEnum):
    """The purposes a customer gives or withdraws consent for."""

    PERSONALIZATION = "personalization"
    EMAIL_MARKETING = "email_marketing"


PERSONALIZATION = ConsentPurpose.PERSONALIZATION.value
EMAIL_MARKETING = ConsentPurpose.EMAIL_MARKETING.value


class Purpose(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    description: str
    legal_basis: str
    data_categories: list[str]
    recipients: list[str]
    retention: str
    needs_consent: bool


class StoredData(msgspec.Struct, frozen=True, kw_only=True):
    """One kind of stored record: what it holds and the rule that removes it."""

    keys: str
    holds: str
    personal: bool
    retention: str


PURPOSES: list[Purpose] = [
    Purpose(
        id=PERSONALIZATION,
        title="Prefilled forms and the personal contact card",
        description="Open a campaign link as a form already filled in with what the company "
        "knows, next to the customer's own contact person.",
        legal_basis="Consent (GDPR Art. 6(1)(a)), per customer, recorded with its notice version",
        data_categories=[
            "identity (first and last name)",
            "contact details (email, phone)",
            "professional details (company, job title)",
            "language",
            "free attributes a form declares prefillable",
        ],
        recipients=["the customer themself, through their signed link"],
        retention="until the customer is erased, or not updated for the customer retention "
        "(PREFILL_CUSTOMER_RETENTION_DAYS, default 1095 days)",
        needs_consent=True,
    ),
    Purpose(
        id=EMAIL_MARKETING,
        title="Campaign emails",
        description="Send campaign emails with personal links; withdrawn by one-click "
        "unsubscribe (RFC 8058) or any other channel.",
        legal_basis="Consent (GDPR Art. 6(1)(a); ePrivacy Art. 13)",
        data_categories=["email address", "language", "consent history"],
        recipients=["the company's email tool (links minted as CSV or through the admin API)"],
        retention="as for personalization",
        needs_consent=True,
    ),
    Purpose(
        id="accountability",
        title="Proof of consent, disclosures and administration",
        description="Prove what was disclosed to whom, and every consent change and admin "
        "action (GDPR Art. 5(2), 7(1), 30).",
        legal_basis="Legal obligation (GDPR Art. 6(1)(c)) and legitimate interest in being "
        "able to defend claims (Art. 6(1)(f), 17(3)(e))",
        data_categories=[
            "customer id (a pseudonym in the company's CRM)",
            "field names disclosed (never values)",
            "consent events: purpose, time, notice version, source, IP truncated to /24 or "
            "/48, user agent, actor",
        ],
        recipients=["the company's privacy officer and support, through the admin API"],
        retention="audit entries: PREFILL_AUDIT_RETENTION_DAYS (default 400); consent history: "
        "with the customer record",
        needs_consent=False,
    ),
    Purpose(
        id="campaign_statistics",
        title="Campaign funnel statistics",
        description="Count, per campaign, the links issued, opened by a person, shown "
        "prefilled, submitted and unsubscribed, the prefilled fields people corrected, and "
        "automated scanners' hits, for the marketing team's dashboard.",
        legal_basis="Legitimate interest in measuring campaigns (GDPR Art. 6(1)(f)); only "
        "aggregates are kept, never a list of who did what",
        data_categories=[
            "counters per campaign",
            "per stage, a HyperLogLog of customer ids pseudonymised with the service's keys and "
            "salted with the campaign's own salt: it estimates how many, and lists no one. "
            "While the salt lives, the holder of the keys and the data could test whether one "
            "given customer is counted (pseudonymous data); once it is gone, nobody can",
        ],
        recipients=["the marketing team, through the admin dashboard and the admin API"],
        retention="counters and HyperLogLogs: the audit retention after the last activity; the "
        "salt (one per shard): the campaign's link lifetime after the last person was "
        "counted in its shard, so at most twice that after the last mint",
        needs_consent=False,
    ),
    Purpose(
        id="change_feed",
        title="Passing submissions and consent changes on",
        description="Publish each submission and consent change on a Redis Stream for the "
        "company's CRM, warehouse and customer service.",
        legal_basis="As the purpose of the change itself",
        data_categories=["submitted form values", "consent events"],
        recipients=["the company's CRM, data warehouse and customer service"],
        retention="7 days in the stream (consumers keep their own copies under their own "
        "records); a customer's entries are removed on erasure",
        needs_consent=False,
    ),
]

STORED: list[StoredData] = [
    StoredData(
        keys="pf:{b:<n>}:c:<id>",
        holds="the customer record, link generation, last update time, current consent per "
        "purpose and its append-only history (one hash)",
        personal=True,
        retention="erased on request (Art. 17) or by `prefill retention` after the customer "
        "retention",
    ),
    StoredData(
        keys="pf:{b:<n>}:customers",
        holds="the ids of the customers in one of the 1024 buckets, to list them",
        personal=True,
        retention="an id is removed with its customer (erasure, retention)",
    ),
    StoredData(
        keys="pf:{b:<n>}:c:<id>:audit",
        holds="the customer's own index of audit entries",
        personal=True,
        retention="trimmed by age on every write; the key expires after the audit retention",
    ),
    StoredData(
        keys="pf:{b:<n>}:c:<id>:refused",
        holds="counts of refused uses of the customer's links per day, channel and cause",
        personal=True,
        retention="expires after the audit retention",
    ),
    StoredData(
        keys="pf:{b:<n>}:c:<id>:requests",
        holds="outcomes of idempotent consent writes, by request id",
        personal=True,
        retention="expires 24 hours after the last write",
    ),
    StoredData(
        keys="pf:{b:<p>}:erased:<pseudonym>",
        holds="after an erasure: the time, the link generation floor, the purposes "
        "withdrawn and a keyed HMAC of the erasing request's Idempotency-Key, under a keyed HMAC "
        "of the customer id (no id, name or email). Kept so that "
        "a re-import from the CRM neither revives the erased customer's links nor re-grants "
        "consent they had withdrawn",
        personal=False,
        retention="expires after the audit retention",
    ),
    StoredData(
        keys="pf:{b:<n>}:audit",
        holds="audit entries: disclosures (field names, never values), consent changes, "
        "submissions (field names) and admin actions, with customer ids",
        personal=True,
        retention="trimmed by age (audit retention) on every write and by `prefill retention`; "
        "a customer's entries are deleted on erasure, and the erasure is recorded under the "
        "pseudonym",
    ),
    StoredData(
        keys="pf:{b:<p>}:refused:<day>",
        holds="counts of refused links that named no one (forged, garbled)",
        personal=False,
        retention="expires after the audit retention",
    ),
    StoredData(
        keys="pf:{feed:<k>}:changes",
        holds="the change feed, in 16 streams (a customer's in one): submissions (with values) "
        "and consent changes",
        personal=True,
        retention="trimmed to 7 days on every write and by `prefill retention`; a customer's "
        "entries are deleted on erasure",
    ),
    StoredData(
        keys="pf:{catalog}:*",
        holds="forms, campaigns, contact persons (staff) and their photos",
        personal=True,
        retention="staff data: until deleted through the admin API or replaced by an import",
    ),
    StoredData(
        keys="pf:{b:<s>}:funnel:<campaign>:counts",
        holds="a campaign's funnel counters (in 64 shards, summed to read): links issued, "
        "loads, opens, prefilled, submitted, unsubscribed, corrected fields, scanner hits",
        personal=False,
        retention="expires after the audit retention without activity",
    ),
    StoredData(
        keys="pf:{b:<s>}:funnel:<campaign>:people:<stage>, pf:{b:<s>}:funnel:<campaign>:salt",
        holds="per stage, a HyperLogLog of salted pseudonyms estimating how many distinct people "
        "reached it (it lists no one), and the salt, per shard of the campaign's funnel (a "
        "person is in one shard, by their bucket). Pseudonymous while the salt "
        "lives; an erasure cannot take one person out of an estimate, but the salt's expiry "
        "makes it anonymous",
        personal=True,
        retention="the salt expires with the campaign's links (see campaign statistics); the "
        "HyperLogLogs after the audit retention without activity",
    ),
    StoredData(
        keys="pf:{import:<run>}:seen",
        holds="while one import or mint runs: the customer ids it has seen and their line, to "
        "catch a duplicate line",
        personal=True,
        retention="deleted when the run ends; expires after 24 hours if it is cut off",
    ),
    StoredData(
        keys="pf:{b:<p>}:rate:<pseudonym>, pf:{rl:<pseudonym>}:link_requests, "
        "pf:{rl:<pseudonym>}:admin_failures",
        holds="rate limit counters: how many unsigned links one client address sent, how often "
        "one link was requested, how many wrong admin keys one address presented, under a "
        "keyed HMAC of the address or of the link's ids (no address, token or id)",
        personal=True,
        retention="expires when its window ends (PREFILL_RATE_LIMIT_WINDOW_SECONDS, 10 minutes)",
    ),
    StoredData(
        keys="pf:{keys}:<key id>",
        holds="admin API keys: name, scopes, SHA-256 of the secret",
        personal=False,
        retention="until revoked",
    ),
]


def consent_purposes() -> list[str]:
    return [p.value for p in ConsentPurpose]


def record_of_processing(organization: str = "the company") -> str:
    """The record of processing activities (GDPR Art. 30) as Markdown."""
    lines = [
        "# Record of processing activities",
        "",
        "Generated from `src/prefill/purposes.py` by `prefill docs record-of-processing`; a "
        "test fails when this file and the code disagree.",
        "",
        f"Controller: {organization}. Processor of the data at rest: the Redis server "
        "prefill is configured with.",
        "",
        "## Purposes",
    ]
    for purpose in PURPOSES:
        lines += [
            "",
            f"### {purpose.title} (`{purpose.id}`)",
            "",
            purpose.description,
            "",
            f"- **Legal basis:** {purpose.legal_basis}",
            f"- **Needs the customer's consent:** {'yes' if purpose.needs_consent else 'no'}",
            f"- **Data categories:** {'; '.join(purpose.data_categories)}",
            f"- **Recipients:** {'; '.join(purpose.recipients)}",
            f"- **Retention:** {purpose.retention}",
        ]
    lines += [
        "",
        "## What is stored, and when it goes",
        "",
        "| keys | holds | personal | retention |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{s.keys}` | {s.holds} | {'yes' if s.personal else 'no'} | {s.retention} |"
        for s in STORED
    ]
    lines += [
        "",
        "## Erasure (GDPR Art. 17)",
        "",
        "`DELETE /admin/api/v1/customers/{id}` or `prefill erase <id>` deletes every "
        "`pf:{b:<n>}:c:<id>` and `pf:{b:<n>}:c:<id>:*` key, the customer's entries in the "
        "shared audit stream and in the change feed, and kills all their links. What is kept "
        "is pseudonymous: the tombstone listed above under `pf:{erased}:<pseudonym>`, and the "
        "audit entry of the erasure itself, which names the pseudonym and the actor. The change "
        "feed carries one last `erasure` entry with the customer id, so that consumers erase "
        "their copies; it goes with the feed's 7 days. After the next AOF rewrite the "
        "customer's record is nowhere in the Redis data directory. The campaign funnels' "
        "estimates of distinct people cannot drop one person from a count; they name no one, "
        "and become anonymous when the campaign's salt expires with its links.",
        "",
        "## Retention job",
        "",
        "Run `prefill retention` daily (cron, a Kubernetes CronJob): it erases customers not "
        "updated for the customer retention and trims the shared streams by age.",
        "",
    ]
    return "\n".join(lines)
