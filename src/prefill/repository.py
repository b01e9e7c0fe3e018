"""Every Redis read and write, and the key schema they share.

Key schema (all keys start with `pf:`; the part in braces is the Redis Cluster hash tag, so one
customer's keys live in one slot and can change together in MULTI):

| key                       | type   | holds                                               |
|---------------------------|--------|-----------------------------------------------------|
| `pf:{c:<id>}:customer`    | hash   | `record`: Customer JSON; `generation`: link counter |
| `pf:{c:<id>}:consent`     | hash   | purpose -> latest ConsentEvent JSON (derived state) |
| `pf:{c:<id>}:consent:log` | list   | every ConsentEvent JSON, oldest first (append-only) |
| `pf:{c:<id>}:refused`     | hash   | `<day>:<channel>:<cause>` -> refused-link count     |
| `pf:{catalog}:version`    | string | counter bumped by every catalog change              |
| `pf:{catalog}:forms`      | hash   | form id -> Form JSON                                |
| `pf:{catalog}:campaigns`  | hash   | campaign id -> Campaign JSON                        |
| `pf:{catalog}:contacts`   | hash   | contact id -> ContactPerson JSON                    |
| `pf:{catalog}:photo:<id>` | string | a contact person's JPEG photo                       |
| `pf:{audit}:events`       | stream | AuditEntry JSON in field `e`, trimmed by age        |
| `pf:{audit}:refused:<day>` | hash  | `<channel>:<cause>` -> count of unsigned refusals   |
| `pf:{health}:probe`       | string | written by readiness checks, expires after a minute |

The audit stream holds disclosures and changes. Refused links are counted per UTC day instead
(under their customer when validly signed, anonymously otherwise): anyone can send any number
of them, and they must cost constant space. Stream entries and counts are kept for the audit
retention (`PREFILL_AUDIT_RETENTION_DAYS`) and trimmed by age, never by count.

The `generation` field is the authority for a customer's link counter; the copy inside `record`
is ignored on read. Consent state is written together with its log entry in one MULTI, so the
derived state never disagrees with the history (imports too: see `save_customers`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import cast

import msgspec
import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from prefill.models import (
    AuditEntry,
    Campaign,
    CampaignState,
    Catalog,
    ConsentEvent,
    ContactPerson,
    Customer,
    Form,
)

PREFIX = "pf:"
CATALOG_VERSION = f"{PREFIX}{{catalog}}:version"
CATALOG_FORMS = f"{PREFIX}{{catalog}}:forms"
CATALOG_CAMPAIGNS = f"{PREFIX}{{catalog}}:campaigns"
CATALOG_CONTACTS = f"{PREFIX}{{catalog}}:contacts"
AUDIT_STREAM = f"{PREFIX}{{audit}}:events"
CUSTOMER_BATCH = 500
ConsentDecision = Callable[[dict[str, dict[str, ConsentEvent]]], dict[str, list[ConsentEvent]]]
"""Current consent state per customer -> the consent events to record per customer."""
HEALTH_PROBE = f"{PREFIX}{{health}}:probe"


BUMP_GENERATION_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], 'record') == 1 then
  return redis.call('HINCRBY', KEYS[1], 'generation', 1)
end
return false
"""


def customer_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:customer"


def consent_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:consent"


def consent_log_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:consent:log"


def customer_refusals_key(customer_id: str) -> str:
    return f"{PREFIX}{{c:{customer_id}}}:refused"


def refusal_counts_key(day: str) -> str:
    return f"{PREFIX}{{audit}}:refused:{day}"


def photo_key(contact_id: str) -> str:
    return f"{PREFIX}{{catalog}}:photo:{contact_id}"


class StoreUnavailable(Exception):
    """Redis could not be reached in time: callers must fail closed."""


class LinkState(msgspec.Struct, frozen=True):
    """What one round trip tells about a link's customer."""

    catalog_version: int
    customer: Customer | None
    consents: dict[str, ConsentEvent]


class CorruptRecord(Exception):
    """A stored customer record or consent entry that no longer decodes."""


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


class Repository:
    """Reads and writes the records of the key schema above; one instance per Redis client."""

    def __init__(self, client: Redis, audit_retention_days: int = 400) -> None:
        self._redis = client
        self._audit_retention_seconds = audit_retention_days * 86_400
        self._bump_generation = client.register_script(BUMP_GENERATION_SCRIPT)

    # -- health -----------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raises StoreUnavailable unless Redis accepts a write (a read-only replica does not)."""
        async with _unavailable_on_error():
            await self._redis.set(HEALTH_PROBE, b"1", ex=60)

    # -- the hot path -----------------------------------------------------------------------

    async def read_link_state(self, customer_id: str) -> LinkState:
        """Customer, consent and catalog version in one round trip.

        A problem with this customer's keys (wrong type, undecodable) is CorruptRecord, which
        callers treat as one more refusal; only a problem shared by everyone is StoreUnavailable.
        """
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(CATALOG_VERSION)
            pipe.hgetall(customer_key(customer_id))
            pipe.hgetall(consent_key(customer_id))
            version, customer_fields, consent_fields = await pipe.execute(raise_on_error=False)
        catalog_version = _parse_version(version)
        if isinstance(customer_fields, Exception) or isinstance(consent_fields, Exception):
            raise CorruptRecord(customer_id)  # e.g. a key of the wrong type
        try:
            return LinkState(
                catalog_version=catalog_version,
                customer=_decode_customer(customer_fields),
                consents=_decode_consents(consent_fields),
            )
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise CorruptRecord(customer_id) from exc

    async def catalog_version(self) -> int:
        async with _unavailable_on_error():
            return _parse_version(await self._redis.get(CATALOG_VERSION))

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
        async with _unavailable_on_error():
            photo = await self._redis.get(photo_key(contact_id))
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

    async def save_customers(
        self,
        customers: list[Customer],
        consent_events: ConsentDecision,
    ) -> int:
        """Upsert customer records with the consent events `consent_events(current states)`
        returns; returns how many events were recorded.

        A new customer starts at generation 0, an existing one keeps its counter (re-importing
        must not revive revoked links). Each batch is one transaction under WATCH of its
        customers' consent state: a withdrawal that lands while the batch is being decided
        makes the batch decide again, so an import can never write over it. Batches are not
        one transaction together: an import that fails midway may be partly written, and
        re-running it is safe.
        """
        recorded = 0
        for start in range(0, len(customers), CUSTOMER_BATCH):
            recorded += await self._save_customer_batch(
                customers[start : start + CUSTOMER_BATCH], consent_events
            )
        return recorded

    async def _save_customer_batch(
        self, customers: list[Customer], consent_events: ConsentDecision
    ) -> int:
        ids = [c.id for c in customers]
        async with _unavailable_on_error(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*(consent_key(i) for i in ids))
                    # Read on another connection: WATCH still sees any write made after it.
                    events = consent_events(await self.current_consents(ids))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    for customer in customers:
                        key = customer_key(customer.id)
                        pipe.hset(key, "record", _encoder.encode(customer))
                        pipe.hsetnx(key, "generation", 0)
                        for event in events.get(customer.id, []):
                            self._queue_consent(pipe, customer.id, event)
                    await pipe.execute()
                    return sum(len(e) for e in events.values())
                except redis.exceptions.WatchError:
                    continue

    async def bump_generation(self, customer_id: str) -> int | None:
        """Invalidate every link issued to the customer so far; None if unknown. One script,
        so a customer erased meanwhile is not resurrected as a bare counter."""
        async with _unavailable_on_error():
            generation = await self._bump_generation(keys=[customer_key(customer_id)])
        return None if generation is None else int(generation)

    # -- consent ----------------------------------------------------------------------------

    async def append_consent(self, customer_id: str, event: ConsentEvent) -> None:
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=True)
            self._queue_consent(pipe, customer_id, event)
            await pipe.execute()

    @staticmethod
    def _queue_consent(pipe: Pipeline, customer_id: str, event: ConsentEvent) -> None:
        encoded = _encoder.encode(event)
        pipe.rpush(consent_log_key(customer_id), encoded)
        pipe.hset(consent_key(customer_id), event.purpose, encoded)

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

    async def record_audit(self, entry: AuditEntry) -> None:
        """Append to the audit stream, dropping entries older than the retention: by age, so
        no amount of new entries can push a recent one out."""
        oldest_ms = int((time.time() - self._audit_retention_seconds) * 1000)
        async with _unavailable_on_error():
            await self._redis.xadd(
                AUDIT_STREAM,
                {"e": _encoder.encode(entry)},
                minid=f"{oldest_ms}-0",
                approximate=False,  # Exact: cheap (only what expired is removed), and testable.
            )

    async def count_refusal(
        self, day: str, channel: str, cause: str, customer_id: str | None = None
    ) -> None:
        """Count a refused link per day: under its customer when the link was validly signed
        (so the count goes with the customer's data), else in the day's anonymous counts."""
        key, field = (
            (customer_refusals_key(customer_id), f"{day}:{channel}:{cause}")
            if customer_id is not None
            else (refusal_counts_key(day), f"{channel}:{cause}")
        )
        async with _unavailable_on_error():
            pipe = self._redis.pipeline(transaction=True)
            pipe.hincrby(key, field, 1)
            pipe.expire(key, self._audit_retention_seconds)
            await pipe.execute()

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

    async def audit_entries(self, count: int = 1000) -> list[AuditEntry]:
        """The most recent audit entries, newest first."""
        async with _unavailable_on_error():
            raw = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                await self._redis.xrevrange(AUDIT_STREAM, count=count),
            )
        return [_audit_decoder.decode(fields[b"e"]) for _, fields in raw]
