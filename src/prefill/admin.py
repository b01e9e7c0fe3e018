"""Use cases of the internal admin API and the operator's CLI: records, consent on a customer's
behalf, audit, export (GDPR Art. 15), erasure (Art. 17), retention, API keys.

Every change is recorded in the audit stream with its actor; the web layer only calls these.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TypeVar

import msgspec

from prefill import apikeys, funnel, ratelimit
from prefill.apikeys import ApiKey, NewApiKey, Scope
from prefill.catalog import CatalogCache
from prefill.consent import current_consent
from prefill.consent_writes import ConsentRecorder, UnknownCustomer
from prefill.funnel import CampaignFunnel
from prefill.imports import check_references
from prefill.links import LinkBuilder
from prefill.minting import Minter, Wanted
from prefill.models import (
    Actor,
    AuditEntry,
    AuditKind,
    Campaign,
    CampaignState,
    ChangeEvent,
    ChangeKind,
    Channel,
    ConsentAction,
    ConsentEvent,
    ContactPerson,
    Customer,
    Form,
)
from prefill.purposes import consent_purposes
from prefill.ratelimit import LimitKind, RateLimits
from prefill.store import ConsentOutcome, CustomerPage, RateCount, Repository, Tombstone

CatalogEntry = Form | Campaign | ContactPerson
Entry = TypeVar("Entry", Form, Campaign, ContactPerson)
KIND_OF: dict[type[CatalogEntry], str] = {
    Form: "forms",
    Campaign: "campaigns",
    ContactPerson: "contacts",
}


class NotFound(LookupError):
    """No such record; the message names it."""


class Forbidden(Exception):
    """The caller may not do this; the message says why."""


class Conflict(Exception):
    """The change contradicts stored state; the message says how."""


class InvalidReference(ValueError):
    """A record names another one that does not exist; the message names both."""


class ConsentState(msgspec.Struct, frozen=True):
    current: dict[str, ConsentEvent]
    """Per purpose, the event that decides it now."""
    history: list[ConsentEvent]
    """Every event, oldest first."""


class CustomerExport(msgspec.Struct, frozen=True):
    """Everything held about one customer (GDPR Art. 15)."""

    exported_at: float
    customer: Customer
    consent: ConsentState
    audit: list[AuditEntry]
    """Disclosures of their data and changes to it, newest first."""
    refused_links: dict[str, int]
    """Refused uses of their links, per `<day>:<channel>:<cause>`."""


class ErasureReceipt(msgspec.Struct, frozen=True):
    customer_id: str
    erased_at: float
    kept: Tombstone
    """What is kept under a pseudonym, and why: see docs/record-of-processing.md."""


class CustomerLinks(msgspec.Struct, frozen=True):
    customer_id: str
    form_url: str
    card_url: str
    vcard_url: str
    unsubscribe_url: str
    list_unsubscribe: str
    list_unsubscribe_post: str


class Skipped(msgspec.Struct, frozen=True):
    customer_id: str
    reason: str


class MintResult(msgspec.Struct, frozen=True):
    links: list[CustomerLinks]
    skipped: list[Skipped]


class RetentionReport(msgspec.Struct, frozen=True):
    erased: list[str]
    checked: int


class AdminService:
    def __init__(
        self,
        repository: Repository,
        catalog: CatalogCache,
        links: LinkBuilder,
        customer_retention_days: int,
        limits: RateLimits = ratelimit.DISABLED,
    ) -> None:
        self._repo = repository
        self._limits = limits
        self._catalog = catalog
        self._links = links
        self._consents = ConsentRecorder(repository)
        self._customer_retention_seconds = customer_retention_days * 86_400

    # -- keys ---------------------------------------------------------------------------------

    async def authenticate(self, presented: str, address: str = "") -> ApiKey | None:
        """The stored key a presented secret belongs to, or None. Raises RateLimited for an
        address that presented too many wrong keys: checked before the key, so that even the
        right key then says nothing."""
        rate = None
        if self._limits.enabled and address:
            rate = RateCount(LimitKind.ADMIN_FAILURES, address, self._limits.admin_failures)
            ratelimit.check(rate.kind, rate.limit, await self._repo.rate_window(rate))
        parsed = apikeys.parse_key(presented)
        key = await self._repo.api_key(parsed[0]) if parsed else None
        if key is not None and parsed is not None and apikeys.matches(key, parsed[1]):
            return key
        if rate is not None:
            ratelimit.check(rate.kind, rate.limit, await self._repo.count_rate(rate))
        return None

    async def create_key(
        self, name: str, scopes: list[Scope], actor: Actor, granter: ApiKey | None = None
    ) -> NewApiKey:
        """A new key. Through the API (`granter`), only with scopes the granter has itself:
        a `keys` key must not be a way to every other scope."""
        if granter is not None and (beyond := sorted(set(scopes) - set(granter.scopes))):
            raise Forbidden(f"this key cannot grant scopes it does not have: {', '.join(beyond)}")
        new = apikeys.create_key(name, scopes)
        await self._repo.save_api_key(new.key)
        await self._audit(actor, "key.create", target=f"key:{new.key.id}")
        return new

    async def list_keys(self) -> list[ApiKey]:
        return await self._repo.api_keys()

    async def revoke_key(self, key_id: str, actor: Actor) -> None:
        if not await self._repo.delete_api_key(key_id):
            raise NotFound(f"no API key {key_id!r}")
        await self._audit(actor, "key.revoke", target=f"key:{key_id}")

    # -- customers ----------------------------------------------------------------------------

    async def customer_ids(self, cursor: int, count: int) -> CustomerPage:
        return await self._repo.list_customer_ids(cursor, count)

    async def customer(self, customer_id: str) -> Customer:
        customer = await self._repo.get_customer(customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id!r}")
        return customer

    async def read_customer(self, customer_id: str, actor: Actor) -> Customer:
        """The record, for support: a disclosure like any other, so it is audited."""
        customer = await self.customer(customer_id)
        await self._record_read(customer_id, actor, ["*"])
        return customer

    async def read_consent(self, customer_id: str, actor: Actor) -> ConsentState:
        state = await self.consent_state(customer_id)
        await self._record_read(customer_id, actor, ["consent"])
        return state

    async def erasure(self, customer_id: str) -> Tombstone | None:
        """The tombstone an erasure of this id left, if any (no personal data is in it)."""
        return (await self._repo.tombstones([customer_id])).get(customer_id)

    async def _record_read(
        self, customer_id: str, actor: Actor, fields: list[str], channel: Channel = Channel.ADMIN
    ) -> None:
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.DISCLOSURE,
                at=time.time(),
                channel=channel,
                customer_id=customer_id,
                fields=fields,
                actor=actor.name,
            )
        )

    async def put_customer(self, customer: Customer, actor: Actor) -> tuple[Customer, bool]:
        """Create or replace a customer record (consent is changed separately); the link
        generation is the stored one. Returns the stored record and whether it is new."""
        catalog = await self._catalog.current()
        if customer.owner_id is not None and customer.owner_id not in catalog.contacts:
            raise InvalidReference(f"owner_id: no contact person {customer.owner_id!r}")
        existed = await self._repo.get_customer(customer.id) is not None
        await self._repo.save_customers([customer], lambda _: {})
        await self._audit(actor, "customer.put", customer_id=customer.id)
        await self._repo.publish_change(
            ChangeEvent(kind=ChangeKind.CUSTOMER, customer_id=customer.id, at=time.time())
        )
        return await self.customer(customer.id), not existed

    async def erase(self, customer_id: str, actor: Actor, request_id: str = "") -> ErasureReceipt:
        """GDPR Art. 17: every key of the customer goes, and with it every link. A retry with
        the same `request_id` (after a 503: no replica confirmed in time) is answered as the
        first erasure, and audited and fed again."""
        tombstone = await self._repo.erase_customer(customer_id, request_id)
        if tombstone is None:
            raise NotFound(f"no customer {customer_id!r}")
        # Proof of the erasure, naming the customer only by pseudonym.
        await self._audit(actor, "customer.erase", target=f"erased:{tombstone.pseudonym}")
        await self._repo.publish_change(
            ChangeEvent(kind=ChangeKind.ERASURE, customer_id=customer_id, at=tombstone.erased_at)
        )
        return ErasureReceipt(customer_id, tombstone.erased_at, tombstone)

    async def export(self, customer_id: str, actor: Actor) -> CustomerExport:
        """GDPR Art. 15: the record, consent history, audit trail and refusal counts."""
        customer = await self.customer(customer_id)
        consent = await self.consent_state(customer_id)
        audit = await self._repo.audit_entries(count=100_000, customer_id=customer_id)
        refused = await self._repo.customer_refusals(customer_id)
        # The export itself is a disclosure of everything: recorded like any other.
        await self._record_read(customer_id, actor, ["*"], Channel.EXPORT)
        return CustomerExport(time.time(), customer, consent, audit, refused)

    # -- consent ------------------------------------------------------------------------------

    async def consent_state(self, customer_id: str) -> ConsentState:
        history = await self._repo.consent_history(customer_id)
        if not history and await self._repo.get_customer(customer_id) is None:
            raise NotFound(f"no customer {customer_id!r}")
        return ConsentState(current=current_consent(history), history=history)

    async def change_consent(
        self, customer_id: str, event: ConsentEvent, request_id: str = ""
    ) -> ConsentOutcome:
        if event.purpose not in consent_purposes():
            raise InvalidReference(
                f"purpose: {event.purpose!r} is not a consent purpose "
                f"({', '.join(consent_purposes())})"
            )
        if event.action is ConsentAction.GRANTED and not event.notice_version:
            raise InvalidReference("notice_version: a grant must name the notice it agrees to")
        try:
            return await self._consents.record(customer_id, event, request_id)
        except UnknownCustomer as exc:
            raise NotFound(f"no customer {customer_id!r}") from exc

    # -- catalog ------------------------------------------------------------------------------

    async def entries(self, kind: type[Entry]) -> list[Entry]:
        table: dict[str, Entry] = getattr(await self._catalog.current(), KIND_OF[kind])
        return [table[key] for key in sorted(table)]

    async def entry(self, kind: type[Entry], entry_id: str) -> Entry:
        table: dict[str, Entry] = getattr(await self._catalog.current(), KIND_OF[kind])
        found = table.get(entry_id)
        if found is None:
            raise NotFound(f"no {KIND_OF[kind][:-1]} {entry_id!r}")
        return found

    async def put_entry(self, entry: CatalogEntry, actor: Actor) -> bool:
        """Create or replace a form, campaign or contact person; True if it is new."""
        catalog = await self._catalog.current()
        table = getattr(catalog, KIND_OF[type(entry)])
        problems = check_references(
            [entry] if isinstance(entry, Form) else [],
            [entry] if isinstance(entry, Campaign) else [],
            [entry] if isinstance(entry, ContactPerson) else [],
            set(catalog.forms),
            set(catalog.contacts),
        )
        if problems:
            raise InvalidReference("; ".join(p.reason for p in problems))
        if isinstance(entry, Campaign):
            await self._put_campaign(entry)
        elif isinstance(entry, Form):
            await self._repo.save_catalog(forms=[entry])
        else:
            await self._repo.save_catalog(contacts=[entry])
        await self._audit(actor, f"{KIND_OF[type(entry)][:-1]}.put", target=_target(entry))
        return entry.id not in table

    async def _put_campaign(self, campaign: Campaign) -> None:
        revoked = False

        def unless_revoked(new: list[Campaign], stored: dict[str, Campaign]) -> list[Campaign]:
            nonlocal revoked
            old = stored.get(campaign.id)
            revoked = old is not None and old.state is CampaignState.REVOKED
            return [] if revoked and campaign.state is not CampaignState.REVOKED else new

        await self._repo.upsert_campaigns([campaign], unless_revoked)
        if revoked and campaign.state is not CampaignState.REVOKED:
            raise Conflict(
                f"campaign {campaign.id!r} is revoked, and revocation is final: its links must "
                "stay dead. Create a new campaign instead."
            )

    async def delete_entry(self, kind: type[CatalogEntry], entry_id: str, actor: Actor) -> None:
        """Delete a form or contact person. A campaign is revoked instead: its record stays, so
        that its links stay dead and its id cannot be used again."""
        if kind is Campaign:
            await self.revoke_campaign(entry_id, actor)
            return
        catalog = await self._catalog.current()
        users: Iterable[str] = ()
        if kind is Form:
            users = (c.id for c in catalog.campaigns.values() if c.form_id == entry_id)
        elif kind is ContactPerson:
            users = (c.id for c in catalog.contacts.values() if c.deputy_id == entry_id)
        if in_use := sorted(users):
            raise Conflict(f"{KIND_OF[kind][:-1]} {entry_id!r} is still used by {in_use}")
        if not await self._repo.delete_catalog_entry(KIND_OF[kind], entry_id):
            raise NotFound(f"no {KIND_OF[kind][:-1]} {entry_id!r}")
        await self._audit(
            actor, f"{KIND_OF[kind][:-1]}.delete", target=f"{KIND_OF[kind][:-1]}:{entry_id}"
        )

    async def revoke_campaign(self, campaign_id: str, actor: Actor) -> Campaign:
        if not await self._repo.set_campaign_state(campaign_id, CampaignState.REVOKED):
            raise NotFound(f"no campaign {campaign_id!r}")
        await self._audit(actor, "campaign.revoke", target=f"campaign:{campaign_id}")
        return await self.entry(Campaign, campaign_id)

    async def mint(self, campaign_id: str, customer_ids: list[str], actor: Actor) -> MintResult:
        """The same links as `prefill mint`, for a list of customers, with the same reasons
        for skipping one."""
        campaign = await self.entry(Campaign, campaign_id)
        if campaign.state is not CampaignState.ACTIVE:
            raise Conflict(f"campaign {campaign_id!r} is revoked; its links would not open")
        minted: list[CustomerLinks] = []
        skipped: list[Skipped] = []
        wanted = [Wanted(n, cid) for n, cid in enumerate(dict.fromkeys(customer_ids), 1)]
        await Minter(self._repo, self._links, campaign, actor.name).mint(
            wanted,
            write=lambda _, customer, links: minted.append(
                CustomerLinks(customer_id=customer.id, **links)
            ),
            on_skip=lambda _, customer_id, reason: skipped.append(Skipped(customer_id, reason)),
        )
        return MintResult(minted, skipped)

    # -- the funnel ---------------------------------------------------------------------------

    async def funnels(self, campaign_id: str | None = None) -> list[CampaignFunnel]:
        """Every campaign's funnel, or one campaign's (NotFound if there is none). Counters
        only: nothing personal is read, so nothing is audited."""
        catalog = await self._catalog.current()
        campaigns = (
            [catalog.campaigns[key] for key in sorted(catalog.campaigns)]
            if campaign_id is None
            else [await self.entry(Campaign, campaign_id)]
        )
        counters = await self._repo.funnel_counters(c.id for c in campaigns)
        return [funnel.figures(c.id, c.name, c.state.value, *counters[c.id]) for c in campaigns]

    # -- audit and retention ------------------------------------------------------------------

    async def audit(
        self, customer_id: str | None, since: float | None, until: float | None, limit: int
    ) -> list[AuditEntry]:
        return await self._repo.audit_entries(limit, customer_id, since, until)

    async def apply_retention(self, actor: Actor) -> RetentionReport:
        """Erase customers not updated for the customer retention, and trim the streams."""
        cutoff = time.time() - self._customer_retention_seconds
        erased: list[str] = []
        checked, cursor = 0, 0
        while True:
            page = await self._repo.list_customer_ids(cursor, count=500)
            updated = await self._repo.customer_updated_at(page.ids)
            checked += len(page.ids)
            await self._repo.stamp_updated_at([c for c, at in updated.items() if at is None])
            for customer_id, at in updated.items():
                if at is not None and at < cutoff:
                    with contextlib.suppress(NotFound):  # erased meanwhile: just as good
                        await self.erase(customer_id, actor)
                        erased.append(customer_id)
            if (cursor := page.cursor) == 0:
                break
        await self._repo.trim_streams()
        return RetentionReport(erased=sorted(erased), checked=checked)

    async def _audit(
        self, actor: Actor, action: str, customer_id: str = "", target: str = ""
    ) -> None:
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.ADMIN,
                at=time.time(),
                customer_id=customer_id,
                action=action,
                actor=actor.name,
                target=target,
            )
        )


def _target(entry: CatalogEntry) -> str:
    return f"{KIND_OF[type(entry)][:-1]}:{entry.id}"
