"""Every Redis read and write, and the key schema they share.

Key schema (all keys start with `pf:`; the part in braces is the Redis Cluster hash tag, so one
customer's keys live in one slot and can change together in MULTI):

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

import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, NamedTuple, cast

import msgspec
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from prefill.apikeys import ApiKey
from prefill.coalesce import Coalescer, Command
from prefill.funnel import PEOPLE_STAGES, FunnelUpdate
from prefill.models import (
    AuditEntry,
    Campaign,
    CampaignState,
    Catalog,
    ChangeEvent,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ContactPerson,
    Customer,
    Form,
)
from prefill.pseudonyms import Pseudonymizer
from prefill.ratelimit import Limit, LimitKind, Window

logger = logging.getLogger("prefill.repository")

PREFIX = "pf:"
CATALOG_VERSION = f"{PREFIX}{{catalog}}:version"
CATALOG_FORMS = f"{PREFIX}{{catalog}}:forms"
CATALOG_CAMPAIGNS = f"{PREFIX}{{catalog}}:campaigns"
CATALOG_CONTACTS = f"{PREFIX}{{catalog}}:contacts"
AUDIT_STREAM = f"{PREFIX}{{audit}}:events"
FEED_STREAM = f"{PREFIX}{{feed}}:changes"
FEED_RETENTION_SECONDS = 7 * 86_400
"""Consumers are expected to keep up within days; older changes are in the records themselves."""
REQUEST_RETENTION_SECONDS = 86_400
"""A client may retry a consent write with the same request id for a day."""
BATCH_SIZE = 500
"""Customers per pipelined transaction of a bulk write: the round trip is paid once per batch,
and a WATCH conflict redoes little."""
ConsentDecision = Callable[[dict[str, dict[str, ConsentEvent]]], dict[str, list[ConsentEvent]]]
"""Current consent state per customer -> the consent events to record per customer."""
HEALTH_PROBE = f"{PREFIX}{{health}}:probe"
RUN_RETENTION_SECONDS = 86_400
"""An import or mint that dies midway leaves its `seen` hash for at most a day."""


BUMP_GENERATION_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], 'record') == 1 then
  return redis.call('HINCRBY', KEYS[1], 'generation', 1)
end
return false
"""


RECORD_AUDIT_SCRIPT = """
-- KEYS: the shared stream, and optionally the customer's index of it
-- ARGV: entry JSON, oldest id kept, index TTL (seconds)
local id = redis.call('XADD', KEYS[1], 'MINID', ARGV[2], '*', 'e', ARGV[1])
if KEYS[2] then
  redis.call('XADD', KEYS[2], 'MINID', ARGV[2], id, 'e', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return id
"""
"""One entry in the shared audit stream and the same id in the customer's index: an erasure
can then delete exactly that customer's entries from the shared stream."""


RECORD_CONSENT_SCRIPT = """
-- KEYS: customer, consent state, consent log, request outcomes
-- ARGV: event JSON, purpose, action, notice version, request id ('' for none), fingerprint, TTL,
--       event time
if ARGV[5] ~= '' then
  local stored = redis.call('HGET', KEYS[4], ARGV[5])
  if stored then
    return {'replayed', stored, redis.call('HEXISTS', KEYS[4], ARGV[5] .. '#published')}
  end
end
if redis.call('HEXISTS', KEYS[1], 'record') == 0 then return {'unknown_customer', ''} end
local outcome, event = 'recorded', ARGV[1]
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current then
  local state = cjson.decode(current)
  if state['action'] == ARGV[3] and state['notice_version'] == ARGV[4] then
    outcome, event = 'unchanged', current
  end
end
if outcome == 'recorded' then
  redis.call('RPUSH', KEYS[3], event)
  redis.call('HSET', KEYS[2], ARGV[2], event)
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[8])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6] .. '|' .. outcome .. '|' .. event)
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
return {outcome, event}
"""
"""Check the request id, the customer and the current state, and append: one atomic step, so
two retries of one request cannot both record, and nothing is recorded for an erased customer."""


COUNT_FUNNEL_SCRIPT = """
-- KEYS: a campaign's counters, its salt, then a HyperLogLog per stage a person is counted in
-- ARGV: retention (s), the campaign's link lifetime (s; 0 leaves the salt alone), a new salt
--       for when there is none, the number N of counters, N field/amount pairs, then one
--       keyed pseudonym per HyperLogLog
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[1], ARGV[5 + 2 * i], ARGV[6 + 2 * i])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
local lifetime = tonumber(ARGV[2])
if lifetime > 0 then
  redis.call('SET', KEYS[2], ARGV[3], 'NX')
  if redis.call('TTL', KEYS[2]) < lifetime then redis.call('EXPIRE', KEYS[2], lifetime) end
  local salt = redis.call('GET', KEYS[2])
  for k = 3, #KEYS do
    redis.call('PFADD', KEYS[k], redis.sha1hex(salt .. ARGV[2 + 2 * n + k]))
    redis.call('EXPIRE', KEYS[k], ARGV[1])
  end
end
"""
"""A funnel update in one command (its keys share the campaign's hash tag). People go into the
HyperLogLogs salted: the salt outlives the campaign's links only as long as their lifetime, and
without it, nobody can tell whether a given person was counted, keys or not."""


class _ScriptCall(NamedTuple):
    script: AsyncScript
    keys: list[str]
    args: list[EncodableT]


RATE_COUNT_SCRIPT = """
-- KEYS: a rate counter, optionally the day's anonymous refusal counts. ARGV: the window in ms,
-- the limit, and with KEYS[2] the refusal's field and the counts' TTL. Counts one request; the
-- first one starts the window. The refusal is counted only within the limit: a limited
-- request writes nothing to the audit. Returns the count and the window's remaining ms.
-- The counter stays out of the append-only file and the replicas: a count that a restart or a
-- failover forgets costs nothing, while a write to the file would cost every link request an
-- fsync. (replicate_commands is needed on Redis 6 for set_repl, and a no-op from Redis 7 on.)
redis.replicate_commands()
redis.set_repl(redis.REPL_NONE)
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if KEYS[2] and n <= tonumber(ARGV[2]) then
  redis.set_repl(redis.REPL_ALL)  -- The refusal count is audit: durable like the rest.
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return {n, ttl}
"""
"""Rate limits (ratelimit.py): counting and starting the window in one step, so no instance
can leave a counter without its expiry."""


class RateCount(NamedTuple):
    """One request to count against a limit: whose (an address, or a link's identity)."""

    kind: LimitKind
    subject: str
    limit: Limit


FIRST_SEEN_SCRIPT = """
-- KEYS: a run's seen hash. ARGV: TTL, then id, line pairs. Returns line, first line pairs of
-- the ids seen before.
local repeated = {}
for i = 2, #ARGV, 2 do
  local first = redis.call('HGET', KEYS[1], ARGV[i])
  if first then
    repeated[#repeated + 1] = ARGV[i + 1]
    repeated[#repeated + 1] = first
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return repeated
"""
"""A batch of a bulk run checks its ids in one command, not one per row."""


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


class StoreUnavailable(Exception):
    """Redis could not be reached in time: callers must fail closed."""


class LinkState(msgspec.Struct, frozen=True):
    """What one round trip tells about a link's customer."""

    catalog_version: int
    customer: Customer | None
    consents: dict[str, ConsentEvent]
    requests: Window | None = None
    """The link's rate count, when one was asked for."""


class CorruptRecord(Exception):
    """A stored customer record or consent entry that no longer decodes."""


class RequestConflict(Exception):
    """A request id reused for a different request: retrying must repeat the same body."""


class ConsentOutcome(msgspec.Struct, frozen=True):
    """What a consent write did: `recorded` a new event, found the state `unchanged` (nothing
    appended), `replayed` an earlier request with the same id, or found no such customer."""

    status: str
    event: ConsentEvent | None
    first_status: str = ""
    """For a replay: what the first request did."""
    published: bool = True
    """For a replay: whether the first request's audit and feed entries were written."""


class Tombstone(msgspec.Struct, frozen=True):
    """What survives an erasure, under a pseudonym: no name, no email, no id."""

    erased_at: float
    generation_floor: int
    withdrawn: list[str]
    pseudonym: str
    """Keyed HMAC of the customer id: how the audit names the erasure."""

    def as_consent_state(self) -> dict[str, ConsentEvent]:
        """The withdrawals as a consent state, so an import cannot grant them again."""
        return {
            purpose: ConsentEvent(
                purpose=purpose,
                action=ConsentAction.WITHDRAWN,
                at=self.erased_at,
                source=ConsentSource.ADMIN,
                actor="erasure",
            )
            for purpose in self.withdrawn
        }


class SavedCustomers(msgspec.Struct, frozen=True):
    records: int = 0
    consent_events: int = 0


class CustomerChange(msgspec.Struct, frozen=True):
    """What writing one customer record did, or in a dry run would do."""

    customer_id: str
    status: str
    """`created`, `updated`, `unchanged`; `gone` (erased meanwhile) or `unreadable` (the stored
    record no longer decodes): left out."""
    fields: list[str] = msgspec.field(default_factory=list)
    """The record's fields whose value changes (for `updated`)."""
    consents: list[ConsentEvent] = msgspec.field(default_factory=list)
    """The consent events recorded for the customer."""


class CustomerState(msgspec.Struct, frozen=True):
    """A customer's record and consent as one round trip reads them; `customer` is None for an
    unknown id, `tombstone` set for an erased one."""

    customer: Customer | None
    consents: dict[str, ConsentEvent]
    tombstone: Tombstone | None = None
    unreadable: bool = False
    """The stored record or consent state no longer decodes (then `customer` is None)."""


class CustomerPage(msgspec.Struct, frozen=True):
    ids: list[str]
    cursor: int
    """Pass back to continue; 0 when the scan is complete."""


@contextlib.asynccontextmanager
async def _unavailable_on_error() -> AsyncIterator[None]:
    # Every Redis failure (unreachable, slow, read-only replica, out of memory, loading, a wrong
    # key type) means the same to a caller: state cannot be trusted now, so fail closed.
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


_encoder = msgspec.json.Encoder()
_customer_decoder = msgspec.json.Decoder(Customer)
_consent_decoder = msgspec.json.Decoder(ConsentEvent)
_form_decoder = msgspec.json.Decoder(Form)
_campaign_decoder = msgspec.json.Decoder(Campaign)
_contact_decoder = msgspec.json.Decoder(ContactPerson)
_audit_decoder = msgspec.json.Decoder(AuditEntry)
_change_decoder = msgspec.json.Decoder(ChangeEvent)
_api_key_decoder = msgspec.json.Decoder(ApiKey)
_tombstone_decoder = msgspec.json.Decoder(Tombstone)


async def _script_reply(call: _ScriptCall, reply: Any) -> Any:
    """A script's reply from a pipeline: a server that lost the script (a restart) answered
    NOSCRIPT without running it, so it is loaded and run now."""
    if isinstance(reply, redis.exceptions.NoScriptError):
        return await call.script(keys=call.keys, args=call.args)
    if isinstance(reply, redis.exceptions.RedisError):
        raise reply
    return reply


def _stream_ms(seconds: float) -> str:
    """A stream id bound for a time: clamped to what Redis accepts (0 to 2**63 ms)."""
    if math.isnan(seconds):
        return "0"
    return str(int(min(max(seconds * 1000, 0), 2**63)))


def _parse_version(raw: object) -> int:
    """The catalog version; anything unreadable there makes every check impossible."""
    if raw is None:
        return 0
    if isinstance(raw, bytes | str | int):
        with contextlib.suppress(ValueError):
            return int(raw)
    raise StoreUnavailable("catalog version unreadable")


def _decode_customer(fields: Mapping[bytes, bytes]) -> Customer | None:
    record = fields.get(b"record")
    if record is None:
        return None
    customer = _customer_decoder.decode(record)
    return msgspec.structs.replace(customer, generation=int(fields.get(b"generation", b"0")))


def _decode_consents(fields: Mapping[bytes, bytes]) -> dict[str, ConsentEvent]:
    return {purpose.decode(): _consent_decoder.decode(raw) for purpose, raw in fields.items()}


def _changed_fields(stored: Customer, new: Customer) -> list[str]:
    """The record fields whose value differs; the link generation is not the record's."""
    before, after = msgspec.structs.asdict(stored), msgspec.structs.asdict(new)
    return [name for name in after if name != "generation" and before[name] != after[name]]


def _decide_batch(
    customers: list[Customer],
    states: Mapping[str, CustomerState],
    consent_events: ConsentDecision,
    only_existing: bool,
) -> list[CustomerChange]:
    current = {
        cid: (state.tombstone.as_consent_state() if state.tombstone else {}) | state.consents
        for cid, state in states.items()
    }
    events = consent_events(current)
    changes = []
    for customer in customers:
        stored = states[customer.id].customer
        if states[customer.id].unreadable:
            changes.append(CustomerChange(customer.id, "unreadable"))
            continue
        if stored is None and only_existing:
            changes.append(CustomerChange(customer.id, "gone"))
            continue
        fields = _changed_fields(stored, customer) if stored else []
        status = "created" if stored is None else "updated" if fields else "unchanged"
        changes.append(CustomerChange(customer.id, status, fields, events.get(customer.id, [])))
    return changes


class Repository:
    """Reads and writes the records of the key schema above; one instance per Redis client."""

    def __init__(
        self, client: Redis, pseudonymizer: Pseudonymizer, audit_retention_days: int = 400
    ) -> None:
        self._redis = client
        self._pseudonyms = pseudonymizer
        self._audit_retention_seconds = audit_retention_days * 86_400
        self._bump_generation = client.register_script(BUMP_GENERATION_SCRIPT)
        self._record_consent = client.register_script(RECORD_CONSENT_SCRIPT)
        self._record_audit = client.register_script(RECORD_AUDIT_SCRIPT)
        self._first_seen = client.register_script(FIRST_SEEN_SCRIPT)
        self._count_funnel = client.register_script(COUNT_FUNNEL_SCRIPT)
        self._rate_count = client.register_script(RATE_COUNT_SCRIPT)
        self._reads = Coalescer(client)
        self._writes = Coalescer(client)

    # -- health -----------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raises StoreUnavailable unless Redis accepts a write (a read-only replica does not)."""
        async with _unavailable_on_error():
            await self._redis.set(HEALTH_PROBE, b"1", ex=60)

    async def durability_problem(self) -> str | None:
        """Why an acknowledged write could be lost in a crash, if the server says so; None
        when it fsyncs every write (or does not let us look: managed Redis often forbids
        CONFIG, and its operator then answers for durability)."""
        try:
            config = await self._redis.config_get("append*")
        except redis.exceptions.RedisError:
            return None
        appendonly, appendfsync = config.get("appendonly"), config.get("appendfsync")
        if appendonly == "yes" and appendfsync == "always":
            return None
        return f"appendonly={appendonly!r} appendfsync={appendfsync!r}"

    # -- the hot path -----------------------------------------------------------------------

    async def read_link_state(self, customer_id: str, rate: RateCount | None = None) -> LinkState:
        """Customer, consent and catalog version in one round trip, shared with concurrent
        requests' reads (not with writes: a read need not wait for an fsync); with `rate`, the
        link's request is counted in it too (ratelimit.py; its counters cost no fsync either).

        A problem with this customer's keys (wrong type, undecodable) is CorruptRecord, which
        callers treat as one more refusal; only a problem shared by everyone is StoreUnavailable.
        """
        call = self._rate_call(rate) if rate else None
        async with _unavailable_on_error():
            commands: list[Command] = [
                ("GET", CATALOG_VERSION),
                ("HGETALL", customer_key(customer_id)),
                ("HGETALL", consent_key(customer_id)),
            ]
            if call:
                commands.append(
                    ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
                )
            replies = await self._reads.execute(commands)
            version, customer_fields, consent_fields = replies[:3]
            requests = Window(*await _script_reply(call, replies[3])) if call else None
        catalog_version = _parse_version(version)
        if isinstance(customer_fields, Exception) or isinstance(consent_fields, Exception):
            raise CorruptRecord(customer_id)  # e.g. a key of the wrong type
        try:
            return LinkState(
                catalog_version=catalog_version,
                customer=_decode_customer(customer_fields),
                consents=_decode_consents(consent_fields),
                requests=requests,
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise CorruptRecord(customer_id) from exc

    async def catalog_version(self) -> int:
        async with _unavailable_on_error():
            (version,) = await self._reads.execute([("GET", CATALOG_VERSION)])
        return _parse_version(version)

    # -- catalog ----------------------------------------------------------------------------

    async def load_catalog(self) -> Catalog:
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=True)
            pipe.get(CATALOG_VERSION)
            pipe.hgetall(CATALOG_FORMS)
            pipe.hgetall(CATALOG_CAMPAIGNS)
            pipe.hgetall(CATALOG_CONTACTS)
            version, forms, campaigns, contacts = await pipe.execute()
        try:
            return Catalog(
                version=_parse_version(version),
                forms={k.decode(): _form_decoder.decode(v) for k, v in forms.items()},
                campaigns={k.decode(): _campaign_decoder.decode(v) for k, v in campaigns.items()},
                contacts={k.decode(): _contact_decoder.decode(v) for k, v in contacts.items()},
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            # Forms and campaigns are everyone's: without them nothing can be checked.
            raise StoreUnavailable("catalog does not decode") from exc

    async def save_catalog(
        self,
        *,
        forms: Iterable[Form] = (),
        campaigns: Iterable[Campaign] = (),
        contacts: Iterable[ContactPerson] = (),
        photos: Mapping[str, bytes] | None = None,
    ) -> None:
        """Upsert catalog records atomically and bump the version so every instance reloads."""
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=True)
            encoded: list[tuple[str, dict[FieldT, EncodableT]]] = [
                (CATALOG_FORMS, {f.id: _encoder.encode(f) for f in forms}),
                (CATALOG_CAMPAIGNS, {c.id: _encoder.encode(c) for c in campaigns}),
                (CATALOG_CONTACTS, {p.id: _encoder.encode(p) for p in contacts}),
            ]
            for key, mapping in encoded:
                if mapping:
                    pipe.hset(key, mapping=mapping)
            for contact_id, photo in (photos or {}).items():
                pipe.set(photo_key(contact_id), photo)
            pipe.incr(CATALOG_VERSION)
            await pipe.execute()

    async def upsert_campaigns(
        self,
        campaigns: list[Campaign],
        reconcile: Callable[[list[Campaign], dict[str, Campaign]], list[Campaign]],
    ) -> None:
        """Write `reconcile(campaigns, stored)` under WATCH: a revocation that lands meanwhile
        is read again and reconciled, never overwritten."""
        async with _unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(CATALOG_CAMPAIGNS)
                    raw = cast("dict[bytes, bytes]", await pipe.hgetall(CATALOG_CAMPAIGNS))
                    stored = {k.decode(): _campaign_decoder.decode(v) for k, v in raw.items()}
                    final = reconcile(campaigns, stored)
                    if not final:
                        return  # Nothing to write: leave the catalog version alone.
                    pipe.multi()  # type: ignore[no-untyped-call]
                    encoded: dict[FieldT, EncodableT] = {c.id: _encoder.encode(c) for c in final}
                    pipe.hset(CATALOG_CAMPAIGNS, mapping=encoded)
                    pipe.incr(CATALOG_VERSION)
                    await pipe.execute()
                    return
                except redis.exceptions.WatchError:
                    continue

    async def set_campaign_state(self, campaign_id: str, state: CampaignState) -> bool:
        """Revoke (or reactivate) a campaign; False if there is no such campaign."""
        found = False

        def change_state(_: list[Campaign], stored: dict[str, Campaign]) -> list[Campaign]:
            nonlocal found
            campaign = stored.get(campaign_id)
            found = campaign is not None
            return [msgspec.structs.replace(campaign, state=state)] if campaign else []

        await self.upsert_campaigns([], change_state)
        return found

    async def contact_photo(self, contact_id: str) -> bytes | None:
        """The photo, read in the round trip shared by concurrent requests (the vCard's)."""
        async with _unavailable_on_error():
            (photo,) = await self._reads.execute([("GET", photo_key(contact_id))])
            if isinstance(photo, redis.exceptions.RedisError):
                raise photo
        return photo if isinstance(photo, bytes) else None

    # -- customers --------------------------------------------------------------------------

    async def _hgetall_each(
        self, customer_ids: Iterable[str], key_of: Callable[[str], str]
    ) -> dict[str, dict[bytes, bytes]]:
        """One hash per customer id (deduplicated), in one pipelined round trip."""
        ids = list(dict.fromkeys(customer_ids))
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hgetall(key_of(customer_id))
            results = await pipe.execute()
        return dict(zip(ids, results, strict=True))

    async def get_customers(self, customer_ids: Iterable[str]) -> dict[str, Customer | None]:
        hashes = await self._hgetall_each(customer_ids, customer_key)
        return {cid: _decode_customer(fields) for cid, fields in hashes.items()}

    async def get_customer(self, customer_id: str) -> Customer | None:
        return (await self.get_customers([customer_id]))[customer_id]

    async def customer_states(self, customer_ids: Iterable[str]) -> dict[str, CustomerState]:
        """Record, consent state and tombstone of each customer, in one pipelined round trip.
        A record that no longer decodes is said so (`unreadable`), for the caller to skip."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return {}
        candidates = [(cid, p) for cid in ids for p in self._pseudonyms.candidates(cid)]
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hgetall(customer_key(customer_id))
                pipe.hgetall(consent_key(customer_id))
            # Tombstones share one hash tag: one MGET for the whole batch.
            pipe.mget([tombstone_key(pseudonym) for _, pseudonym in candidates])
            *replies, found = await pipe.execute(raise_on_error=False)
        if isinstance(found, Exception):
            raise found  # Tombstones are everyone's: without them nothing can be decided.
        tombstones: dict[str, bytes] = {}
        for (customer_id, _), raw in zip(candidates, found, strict=True):
            if raw is not None:
                tombstones.setdefault(customer_id, raw)
        states: dict[str, CustomerState] = {}
        for index, customer_id in enumerate(ids):
            raw = tombstones.get(customer_id)
            tombstone = _tombstone_decoder.decode(raw) if raw else None
            try:
                customer_fields, consent_fields = replies[2 * index], replies[2 * index + 1]
                if isinstance(customer_fields, Exception) or isinstance(consent_fields, Exception):
                    raise ValueError("a key of the wrong type")
                states[customer_id] = CustomerState(
                    customer=_decode_customer(customer_fields),
                    consents=_decode_consents(consent_fields),
                    tombstone=tombstone,
                )
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                states[customer_id] = CustomerState(None, {}, tombstone, unreadable=True)
        return states

    async def save_customers(
        self,
        customers: list[Customer],
        consent_events: ConsentDecision,
        only_existing: bool = False,
    ) -> SavedCustomers:
        """Upsert customer records (each written, even when unchanged: a submission or an admin
        PUT is activity) with the consent events `consent_events(current states)` returns.
        With `only_existing`, a customer erased meanwhile is left out rather than brought back.
        Batches are not one transaction together (see `write_customer_batch`)."""
        records = events = 0
        for start in range(0, len(customers), BATCH_SIZE):
            changes = await self.write_customer_batch(
                customers[start : start + BATCH_SIZE],
                consent_events,
                only_existing=only_existing,
                write_unchanged=True,
            )
            if unreadable := [c.customer_id for c in changes if c.status == "unreadable"]:
                raise CorruptRecord(unreadable[0])
            records += sum(c.status != "gone" for c in changes)
            events += sum(len(c.consents) for c in changes)
        return SavedCustomers(records, events)

    async def write_customer_batch(
        self,
        customers: list[Customer],
        consent_events: ConsentDecision,
        *,
        only_existing: bool = False,
        write_unchanged: bool = False,
        dry_run: bool = False,
    ) -> list[CustomerChange]:
        """Upsert one batch of customers (ids unique within it) with the consent events
        `consent_events(current states)` decides, and say what changed for each.

        A new customer starts at generation 0 (or above an erased namesake's), an existing one
        keeps its counter (re-importing must not revive revoked links). A record equal to the
        stored one is not written unless `write_unchanged`: re-running an import changes
        nothing. The batch is one transaction under WATCH of its customers' records and consent
        state: an erasure or a withdrawal that lands while the batch is being decided makes the
        batch decide again, so it can never be written over. `dry_run` decides and writes
        nothing.
        """
        if not customers:
            return []  # (WATCH without keys is an error.)
        ids = [c.id for c in customers]
        async with _unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if not dry_run:
                        await pipe.watch(
                            *(customer_key(i) for i in ids), *(consent_key(i) for i in ids)
                        )
                    # Read on another connection: WATCH still sees any write made after it. An
                    # erasure writes its tombstone before it deletes, so a retry sees it.
                    states = await self.customer_states(ids)
                    changes = _decide_batch(customers, states, consent_events, only_existing)
                    if dry_run:
                        return changes
                    pipe.multi()  # type: ignore[no-untyped-call]
                    # Nothing to write, nothing sent: no transaction and no fsync (leaving the
                    # block discards the empty MULTI and the WATCH).
                    if self._queue_batch(pipe, customers, states, changes, write_unchanged):
                        await pipe.execute()
                    return changes
                except redis.exceptions.WatchError:
                    continue

    def _queue_batch(
        self,
        pipe: Pipeline,
        customers: list[Customer],
        states: Mapping[str, CustomerState],
        changes: list[CustomerChange],
        write_unchanged: bool,
    ) -> bool:
        """Queue the writes `changes` call for (a few commands per customer: bulk imports are
        bound by them); False if there are none."""
        now = time.time()
        queued = False
        for customer, change in zip(customers, changes, strict=True):
            fields: dict[FieldT, EncodableT] = {}
            if change.status == "created":
                # An erased customer's old links must stay dead if the id comes back. (WATCH
                # guarantees the record is still absent when this runs.)
                floor = states[customer.id].tombstone
                fields["generation"] = floor.generation_floor if floor else 0
            if change.status in ("created", "updated") or (
                change.status == "unchanged" and write_unchanged
            ):
                fields["record"] = _encoder.encode(customer)
            if change.consents:
                encoded = [_encoder.encode(event) for event in change.consents]
                pipe.rpush(consent_log_key(customer.id), *encoded)
                pipe.hset(
                    consent_key(customer.id),
                    mapping={
                        e.purpose: raw for e, raw in zip(change.consents, encoded, strict=True)
                    },
                )
            if fields or change.consents:
                pipe.hset(customer_key(customer.id), mapping=fields | {"updated_at": now})
                queued = True
        return queued

    async def bump_generation(self, customer_id: str) -> int | None:
        """Invalidate every link issued to the customer so far; None if unknown. One script,
        so a customer erased meanwhile is not resurrected as a bare counter."""
        async with _unavailable_on_error():
            generation = await self._bump_generation(keys=[customer_key(customer_id)])
        return None if generation is None else int(generation)

    # -- consent ----------------------------------------------------------------------------

    async def current_consents(
        self, customer_ids: Iterable[str]
    ) -> dict[str, dict[str, ConsentEvent]]:
        hashes = await self._hgetall_each(customer_ids, consent_key)
        return {cid: _decode_consents(fields) for cid, fields in hashes.items()}

    async def consent_history(self, customer_id: str) -> list[ConsentEvent]:
        async with _unavailable_on_error():
            raw = await self._redis.lrange(consent_log_key(customer_id), 0, -1)
        return [_consent_decoder.decode(item) for item in raw]

    # -- audit ------------------------------------------------------------------------------

    async def record_audit(self, entry: AuditEntry, funnel: FunnelUpdate | None = None) -> None:
        """Append to the audit stream and to the customer's own index of it, dropping entries
        older than the retention: by age, so no amount of new entries can push a recent one
        out. Exact trimming: cheap (only what expired is removed), and testable. The `funnel`
        counters are written in the same round trip, best effort."""
        keys = [AUDIT_STREAM]
        if entry.customer_id:
            keys.append(customer_audit_key(entry.customer_id))
        args: list[EncodableT] = [
            _encoder.encode(entry),
            self._oldest_kept_id(),
            self._audit_retention_seconds,
        ]
        await self._in_one_trip([_ScriptCall(self._record_audit, keys, args)], funnel=funnel)

    def _oldest_kept_id(self) -> str:
        return f"{int((time.time() - self._audit_retention_seconds) * 1000)}-0"

    async def count_refusal(
        self,
        day: str,
        channel: str,
        cause: str,
        customer_id: str | None = None,
        funnel: FunnelUpdate | None = None,
    ) -> None:
        """Count a refused link per day: under its customer when the link was validly signed
        (so the count goes with the customer's data), else in the day's anonymous counts.
        The `funnel` counters are written in the same round trip, best effort."""
        key, field = (
            (customer_refusals_key(customer_id), f"{day}:{channel}:{cause}")
            if customer_id is not None
            else (refusal_counts_key(day), f"{channel}:{cause}")
        )

        count = [("HINCRBY", key, field, 1), ("EXPIRE", key, self._audit_retention_seconds)]
        await self._in_one_trip([], count, funnel)

    async def count_unsigned_refusal(
        self, day: str, channel: str, cause: str, rate: RateCount
    ) -> Window:
        """`count_refusal` for a link without a valid signature, counted against its client
        address's limit in the same command; over the limit, the refusal is not counted."""
        call = self._rate_call(
            rate,
            refusal_counts_key(day),
            [f"{channel}:{cause}", self._audit_retention_seconds],
        )
        (reply,) = await self._in_one_trip([call])
        return Window(*reply)

    async def count_rate(self, rate: RateCount) -> Window:
        """Count one request against a limit."""
        (reply,) = await self._in_one_trip([self._rate_call(rate)])
        return Window(*reply)

    async def rate_window(self, rate: RateCount) -> Window:
        """A limit's count so far, counting nothing (0 when no window is open)."""
        key = self._rate_call(rate).keys[0]
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            count, remaining_ms = await pipe.execute()
        return Window(int(count or 0), int(remaining_ms))

    def _rate_call(
        self,
        rate: RateCount,
        counts_key: str | None = None,
        counts_args: Iterable[EncodableT] = (),
    ) -> _ScriptCall:
        """The rate script for `rate`, keyed by a keyed pseudonym of its subject (an address or
        a link's identity): the key says nothing about whom it counts."""
        pseudonym = self._pseudonyms.of(f"rate:{rate.kind.value}:{rate.subject}")
        if counts_key is None:
            keys = [rate_key(rate.kind, pseudonym)]
        else:
            keys = [refused_rate_key(pseudonym), counts_key]
        args: list[EncodableT] = [rate.limit.window_seconds * 1000, rate.limit.count]
        return _ScriptCall(self._rate_count, keys, [*args, *counts_args])

    # -- the funnel -------------------------------------------------------------------------

    def _funnel_call(self, update: FunnelUpdate) -> _ScriptCall:
        """The counters, and each person as a keyed pseudonym salted with the campaign's own
        salt in the stage's HyperLogLog (see COUNT_FUNNEL_SCRIPT)."""
        people = update.people if update.link_lifetime > 0 else {}
        keys = [funnel_counts_key(update.campaign_id), funnel_salt_key(update.campaign_id)]
        keys += [funnel_people_key(update.campaign_id, stage) for stage in people]
        args: list[EncodableT] = [
            self._audit_retention_seconds,
            update.link_lifetime,
            secrets.token_hex(16) if update.link_lifetime else "",  # a salt, if one is needed
            len(update.counts),
        ]
        for field, amount in update.counts.items():
            args += [field, amount]
        args += [self._pseudonyms.of(customer_id) for customer_id in people.values()]
        return _ScriptCall(self._count_funnel, keys, args)

    async def count_funnel(self, update: FunnelUpdate) -> None:
        await self._in_one_trip([self._funnel_call(update)])

    async def _in_one_trip(
        self,
        scripts: list[_ScriptCall],
        commands: list[Command] | None = None,
        funnel: FunnelUpdate | None = None,
    ) -> list[Any]:
        """Writes in one round trip, so under one fsync (each acknowledged write costs one),
        shared with the writes of concurrent requests (a group commit: coalesce.py).

        Scripts go by their SHA: given to a pipeline as scripts, redis-py would first ask the
        server whether it has them, every time, a round trip more. A server that lost one (a
        restart) answers NOSCRIPT without running it: it is loaded and called again. `funnel`
        counters are best effort: a failure there is logged and the rest stands (and they are
        not undone if the rest fails: a count more, never a disclosure). Returns the replies of
        `scripts`."""
        calls = [*scripts, *([self._funnel_call(funnel)] if funnel else [])]
        results: list[Any] = []
        sent: list[Command] = [
            ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args) for call in calls
        ]
        async with _unavailable_on_error():
            replies = await self._writes.execute([*sent, *(commands or [])])
            for call, reply in zip(calls, replies, strict=False):
                try:
                    results.append(await _script_reply(call, reply))
                except redis.exceptions.RedisError as exc:
                    if funnel is None or call is not calls[-1]:
                        raise
                    logger.warning("funnel not counted: %s", type(exc).__name__)
            for reply in replies[len(calls) :]:
                if isinstance(reply, redis.exceptions.RedisError):
                    raise reply
        return results[: len(scripts)]

    async def funnel_counters(
        self, campaign_ids: Iterable[str]
    ) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """Per campaign: its counters, and the distinct people per stage (estimates)."""
        ids = list(dict.fromkeys(campaign_ids))
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for campaign_id in ids:
                pipe.hgetall(funnel_counts_key(campaign_id))
                for stage in PEOPLE_STAGES:
                    pipe.pfcount(funnel_people_key(campaign_id, stage))
            replies = iter(await pipe.execute())
        result = {}
        for campaign_id in ids:
            raw = cast("dict[bytes, bytes]", next(replies))
            counts = {field.decode(): int(value) for field, value in raw.items()}
            result[campaign_id] = (counts, {stage: int(next(replies)) for stage in PEOPLE_STAGES})
        return result

    # -- bulk runs: imports and mints remember which ids they have seen -------------------------

    async def first_seen(self, run_id: str, rows: list[tuple[str, int]]) -> dict[int, int]:
        """Remember each (id, line) of a run; for the lines whose id the run saw before, the
        line it was first seen on. Kept in Redis, so a run's memory stays constant however
        many ids it sees."""
        if not rows:
            return {}
        args: list[EncodableT] = [RUN_RETENTION_SECONDS]
        for customer_id, line in rows:
            args += [customer_id, line]
        async with _unavailable_on_error():
            repeated = await self._first_seen(keys=[run_seen_key(run_id)], args=args)
        pairs = iter(repeated)
        return {int(line): int(first) for line, first in zip(pairs, pairs, strict=True)}

    async def end_run(self, run_id: str) -> None:
        async with _unavailable_on_error():
            await self._redis.delete(run_seen_key(run_id))

    async def customer_refusals(self, customer_id: str) -> dict[str, int]:
        """`<day>:<channel>:<cause>` -> count, for one customer's refused links."""
        return await self._counts(customer_refusals_key(customer_id))

    async def refusal_counts(self, day: str) -> dict[str, int]:
        """`<channel>:<cause>` -> count, for one day's unsigned refused links."""
        return await self._counts(refusal_counts_key(day))

    async def _counts(self, key: str) -> dict[str, int]:
        async with _unavailable_on_error():
            raw = cast("dict[bytes, bytes]", await self._redis.hgetall(key))
        return {field.decode(): int(value) for field, value in raw.items()}

    async def audit_entries(
        self,
        count: int = 1000,
        customer_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[AuditEntry]:
        """Audit entries between `since` and `until` (Unix seconds), newest first: everyone's,
        or one customer's from their own index."""
        key = AUDIT_STREAM if customer_id is None else customer_audit_key(customer_id)
        newest = "+" if until is None else _stream_ms(until)
        oldest = "-" if since is None else _stream_ms(since)
        async with _unavailable_on_error():
            raw = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self._redis.xrevrange(key, max=newest, min=oldest, count=count),
            )
        return [_audit_decoder.decode(fields[b"e"]) for _, fields in raw]

    # -- consent writes and the change feed ---------------------------------------------------

    async def record_consent(
        self, customer_id: str, event: ConsentEvent, request_id: str = "", fingerprint: str = ""
    ) -> ConsentOutcome:
        """Append `event` unless it repeats the current state. With a request id, a retry of
        the same request returns the first outcome; a different request under the same id
        raises RequestConflict. The answer comes after Redis has applied (and, with
        `appendfsync always`, fsynced) the write."""
        keys = [
            customer_key(customer_id),
            consent_key(customer_id),
            consent_log_key(customer_id),
            consent_requests_key(customer_id),
        ]
        args: list[EncodableT] = [
            _encoder.encode(event),
            event.purpose,
            event.action.value,
            event.notice_version,
            request_id,
            fingerprint,
            REQUEST_RETENTION_SECONDS,
            repr(event.at),
        ]
        async with _unavailable_on_error():
            status, payload, *published = await self._record_consent(keys=keys, args=args)
        status = status.decode()
        if status == "unknown_customer":
            return ConsentOutcome(status, None)
        if status == "replayed":
            stored_fingerprint, first_status, payload = payload.split(b"|", 2)
            if stored_fingerprint.decode() != fingerprint:
                raise RequestConflict(request_id)
            return ConsentOutcome(
                status,
                _consent_decoder.decode(payload),
                first_status=first_status.decode(),
                published=bool(published[0]),
            )
        return ConsentOutcome(status, _consent_decoder.decode(payload))

    async def mark_published(self, customer_id: str, request_id: str) -> None:
        """The audit and feed entries of a request's consent event are written."""
        async with _unavailable_on_error():
            await self._redis.hset(consent_requests_key(customer_id), f"{request_id}#published", 1)

    async def publish_change(self, change: ChangeEvent) -> None:
        """Append to the change feed; entries older than the feed retention are dropped."""
        oldest = f"{int((time.time() - FEED_RETENTION_SECONDS) * 1000)}-0"
        async with _unavailable_on_error():
            await self._redis.xadd(
                FEED_STREAM, {"e": _encoder.encode(change)}, minid=oldest, approximate=False
            )

    # -- erasure --------------------------------------------------------------------------------

    async def tombstones(self, customer_ids: Iterable[str]) -> dict[str, Tombstone]:
        """The erasure tombstones of those customer ids that have one."""
        ids = list(dict.fromkeys(customer_ids))
        candidates = [(cid, p) for cid in ids for p in self._pseudonyms.candidates(cid)]
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for _, pseudonym in candidates:
                pipe.get(tombstone_key(pseudonym))
            found = await pipe.execute()
        tombstones: dict[str, Tombstone] = {}
        for (customer_id, _), raw in zip(candidates, found, strict=True):
            if raw is not None and customer_id not in tombstones:
                tombstones[customer_id] = _tombstone_decoder.decode(raw)
        return tombstones

    async def erase_customer(self, customer_id: str) -> Tombstone | None:
        """Delete every key of the customer, and their entries in the shared audit stream and
        the change feed; leave a pseudonymous tombstone. None if there was no such customer."""
        watched = [customer_key(customer_id), consent_key(customer_id)]
        watched.append(customer_audit_key(customer_id))
        async with _unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*watched)
                    generation = await pipe.hget(customer_key(customer_id), "generation")
                    if generation is None:
                        return None
                    consents = cast(
                        "dict[bytes, bytes]", await pipe.hgetall(consent_key(customer_id))
                    )
                    indexed = cast(
                        "list[tuple[bytes, object]]",
                        await pipe.xrange(customer_audit_key(customer_id)),
                    )
                    pseudonym = self._pseudonyms.of(customer_id)
                    tombstone = Tombstone(
                        erased_at=time.time(),
                        generation_floor=int(generation) + 1,
                        withdrawn=sorted(p.decode() for p in consents),
                        pseudonym=pseudonym,
                    )
                    # First, in a step of its own (another hash slot): an import racing this
                    # erasure is retried by the DEL below, and then finds the tombstone.
                    await self._redis.set(
                        tombstone_key(pseudonym),
                        _encoder.encode(tombstone),
                        ex=self._audit_retention_seconds,
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.delete(*customer_keys(customer_id))
                    await pipe.execute()
                    break
                except redis.exceptions.WatchError:
                    continue
            # The index shares the shared stream's ids (RECORD_AUDIT_SCRIPT).
            if indexed:
                await self._redis.xdel(AUDIT_STREAM, *(entry_id for entry_id, _ in indexed))
        await self._remove_from_feed(customer_id)
        return tombstone

    async def _remove_from_feed(self, customer_id: str) -> None:
        # The feed is short (a week); an erasure is rare: a scan of it is the simple, exact way.
        # The erasure's own feed entry comes after this: consumers need the id to erase too.
        async with _unavailable_on_error():
            entries = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]", await self._redis.xrange(FEED_STREAM)
            )
            doomed = [
                entry_id
                for entry_id, fields in entries
                if _change_decoder.decode(fields[b"e"]).customer_id == customer_id
            ]
            if doomed:
                await self._redis.xdel(FEED_STREAM, *doomed)

    async def list_customer_ids(self, cursor: int = 0, count: int = 100) -> CustomerPage:
        """One step of a SCAN over customer records (no index to keep consistent)."""
        pattern = customer_key("*")
        async with _unavailable_on_error():
            next_cursor, keys = await self._redis.scan(cursor, match=pattern, count=count)
        prefix, suffix = customer_key("").encode().split(b"}")
        ids = sorted(k[len(prefix) : -len(suffix) - 1].decode() for k in cast("list[bytes]", keys))
        return CustomerPage(ids=ids, cursor=int(next_cursor))

    async def customer_updated_at(self, customer_ids: Iterable[str]) -> dict[str, float | None]:
        ids = list(customer_ids)
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hget(customer_key(customer_id), "updated_at")
            found = await pipe.execute()
        return {
            cid: None if raw is None else float(raw) for cid, raw in zip(ids, found, strict=True)
        }

    async def stamp_updated_at(self, customer_ids: Iterable[str]) -> None:
        """Give records written before `updated_at` existed one now, so retention counts from
        here instead of never."""
        ids = list(customer_ids)
        if not ids:
            return
        now = time.time()
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for customer_id in ids:
                pipe.hsetnx(customer_key(customer_id), "updated_at", now)
            await pipe.execute()

    async def trim_streams(self) -> None:
        """Apply the age limits to the shared streams even when nothing new is written."""
        feed_oldest = f"{int((time.time() - FEED_RETENTION_SECONDS) * 1000)}-0"
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            pipe.xtrim(AUDIT_STREAM, minid=self._oldest_kept_id(), approximate=False)
            pipe.xtrim(FEED_STREAM, minid=feed_oldest, approximate=False)
            await pipe.execute()

    # -- API keys -------------------------------------------------------------------------------

    async def save_api_key(self, key: ApiKey) -> None:
        async with _unavailable_on_error():
            await self._redis.set(api_key_key(key.id), _encoder.encode(key))

    async def api_key(self, key_id: str) -> ApiKey | None:
        async with _unavailable_on_error():
            raw = await self._redis.get(api_key_key(key_id))
        return None if raw is None else _api_key_decoder.decode(raw)

    async def api_keys(self) -> list[ApiKey]:
        async with _unavailable_on_error():
            keys = [k async for k in self._redis.scan_iter(match=api_key_key("*"), count=500)]
            raw = await self._redis.mget(keys) if keys else []
        found = [_api_key_decoder.decode(item) for item in raw if item is not None]
        return sorted(found, key=lambda k: k.created_at)

    async def delete_api_key(self, key_id: str) -> bool:
        async with _unavailable_on_error():
            return bool(await self._redis.delete(api_key_key(key_id)))

    # -- catalog deletions ----------------------------------------------------------------------

    async def delete_catalog_entry(self, kind: str, entry_id: str) -> bool:
        """Remove a form, campaign or contact person (`kind`); False if there was none."""
        key = {
            "forms": CATALOG_FORMS,
            "campaigns": CATALOG_CAMPAIGNS,
            "contacts": CATALOG_CONTACTS,
        }[kind]
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(key, entry_id)
            if kind == "contacts":
                pipe.delete(photo_key(entry_id))
            pipe.incr(CATALOG_VERSION)
            removed, *_ = await pipe.execute()
        return bool(removed)
