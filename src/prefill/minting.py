"""Minting a campaign's personal links in bulk, for the email tool's merge fields and headers.

Customers come from a CSV of ids (its columns are copied through) or from a segment: every
customer who has consented to the purpose. Each gets the form, card, vCard and unsubscribe URLs
and the ready `List-Unsubscribe` / `List-Unsubscribe-Post` header values (RFC 8058), or is
skipped with a reason: unknown id, erased, no consent to the purpose (email marketing by
default: a campaign email needs it), or no contact person and no fallback to sign it. Streams
in batches of one round trip each; memory stays constant.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import NamedTuple

import msgspec

from prefill import funnel
from prefill.catalog import CatalogCache
from prefill.consent import consent_refusal
from prefill.contacts import contact_for
from prefill.import_rows import ImportRejected, Problem, batches, csv_rows, end_in_flight
from prefill.links import LinkBuilder
from prefill.models import (
    ID_PATTERN,
    AuditEntry,
    AuditKind,
    Campaign,
    CampaignState,
    Catalog,
    Customer,
)
from prefill.purposes import EMAIL_MARKETING
from prefill.store import CustomerState, Repository
from prefill.tokens import LinkClaims

ID_RE = re.compile(ID_PATTERN)
SEGMENT_PAGE = 4096
"""Customer ids a segment lists at a time: about 64 buckets' worth, the buckets one round trip
of a listing reads (a smaller page left most of them read for nothing)."""
MINT_BATCH = 1000
"""Customers a round trip reads: the batch's fixed costs (the catalog check, the funnel's
durable write) are paid less often; Redis runs a batch's read in a few milliseconds."""
ID_COLUMNS = ("customer_id", "id")
MERGE_COLUMNS = ("email", "first_name", "last_name", "locale")
"""What an email tool needs to address and greet the customer in their language."""
URL_COLUMNS = (
    "form_url",
    "card_url",
    "vcard_url",
    "unsubscribe_url",
    "list_unsubscribe",
    "list_unsubscribe_post",
)
"""The link columns, and the two header values an email tool puts on the message (RFC 8058)."""


class MintError(Exception):
    """The campaign or the input cannot be minted at all; the message says why."""


class SkipReason(enum.StrEnum):
    UNKNOWN = "unknown customer id"
    ERASED = "erased"
    NO_CONSENT = "no consent"
    NO_CONTACT = "no contact person and no fallback"
    UNREADABLE = "stored record unreadable"
    DUPLICATE = "duplicate"
    BAD_ROW = "bad row"


class MintReport(msgspec.Struct):
    minted: int = 0
    skipped: dict[str, int] = msgspec.field(default_factory=dict)
    """Skip reason -> how many."""
    outside: int = 0
    """For a segment: customers who are not in it (no consent to the purpose)."""

    def skip(self, reason: SkipReason) -> None:
        self.skipped[reason.value] = self.skipped.get(reason.value, 0) + 1


def personal_links(
    links: LinkBuilder, customer: Customer, campaign: Campaign, form_path: str | None = None
) -> dict[str, str]:
    """The URL columns for one customer of a campaign; `form_path`: the campaign form's
    (`LinkBuilder.form_path`), when the caller has it for many customers."""
    form_url, card_url, vcard_url, unsubscribe_url = links.campaign_links(
        LinkClaims(customer.id, campaign.id, customer.generation),
        form_path or links.form_path(campaign.form_id),
    )
    return {
        "form_url": form_url,
        "card_url": card_url,
        "vcard_url": vcard_url,
        "unsubscribe_url": unsubscribe_url,
        "list_unsubscribe": f"<{unsubscribe_url}>",
        "list_unsubscribe_post": "List-Unsubscribe=One-Click",
    }


def skip_reason(
    state: CustomerState, campaign: Campaign, catalog: Catalog, consent_purpose: str
) -> SkipReason | None:
    """Why this customer gets no links for the campaign, if they don't."""
    if state.unreadable:
        return SkipReason.UNREADABLE
    if state.customer is None:
        return SkipReason.ERASED if state.tombstone is not None else SkipReason.UNKNOWN
    if consent_refusal(state.consents, consent_purpose) is not None:
        return SkipReason.NO_CONSENT
    form = catalog.forms.get(campaign.form_id)
    if contact_for(state.customer, form, catalog.contacts) is None:
        return SkipReason.NO_CONTACT
    return None


async def require_active_campaign(repository: Repository, campaign_id: str) -> Campaign:
    campaign = (await repository.load_catalog()).campaigns.get(campaign_id)
    if campaign is None:
        raise MintError(f"no campaign {campaign_id!r}")
    if campaign.state is not CampaignState.ACTIVE:
        raise MintError(
            f"campaign {campaign_id!r} is {campaign.state.value}; its links would not open"
        )
    return campaign


class Wanted(msgspec.Struct, frozen=True):
    """A customer to mint for: where they were asked for, and the input's own columns."""

    line: int
    customer_id: str
    columns: dict[str, str] = msgspec.field(default_factory=dict)


def wanted_from_csv(source: Iterable[str]) -> tuple[list[str], Iterator[Wanted | Problem]]:
    """The input's columns, and its rows as the customers to mint for."""
    header: list[str] = []

    def needs_an_id_column(columns: list[str]) -> str | None:
        header.extend(columns)
        if any(column in columns for column in ID_COLUMNS):
            return None
        return f"the input needs a column named {' or '.join(ID_COLUMNS)}"

    # A list of ids may end a row where its other cells would be empty.
    rows = csv_rows(source, set(), "input", needs_an_id_column, short_rows=True)
    try:
        first = next(rows, None)  # Reads and checks the header.
    except ImportRejected as exc:
        raise MintError(exc.problems[0].reason) from exc
    id_column = next(column for column in ID_COLUMNS if column in header)

    def wanted() -> Iterator[Wanted | Problem]:
        for line, row in itertools.chain([first] if first else [], rows):
            if isinstance(row, Problem):
                yield row
            else:
                yield Wanted(line, row.get(id_column, ""), row)

    return header, wanted()


async def consenting_segment(
    repository: Repository, batch_size: int = MINT_BATCH
) -> AsyncIterator[list[Wanted | Problem]]:
    """Every customer once, in the order a SCAN finds them (numbered from 1), a batch at a
    time; whether they consent is decided with the rest, batch by batch."""
    number = 0
    async for page in repository.each_customer_id(SEGMENT_PAGE):
        for start in range(0, len(page), batch_size):
            ids = page[start : start + batch_size]
            yield [Wanted(line, cid) for line, cid in enumerate(ids, number + 1)]
            number += len(ids)


class Minter:
    """Mints one campaign's links, batch by batch."""

    def __init__(
        self,
        repository: Repository,
        links: LinkBuilder,
        campaign: Campaign,
        actor: str,
        consent_purpose: str = EMAIL_MARKETING,
        batch_size: int = MINT_BATCH,
        segment: bool = False,
    ) -> None:
        """`segment`: the customers come from `consenting_segment`, so one without consent
        is not in it (counted apart), rather than skipped, and none comes twice."""
        self._repo = repository
        self._links = links
        self._campaign = campaign
        self._actor = actor
        self._purpose = consent_purpose
        self._batch_size = batch_size
        self._segment = segment
        self._catalog = CatalogCache(repository)

    async def mint(
        self,
        wanted: AsyncIterator[Wanted | Problem] | Iterable[Wanted | Problem],
        write: Callable[[Wanted, Customer, dict[str, str]], None],
        on_skip: Callable[[int, str, str], None] = lambda line, customer_id, reason: None,
        on_batch: Callable[[int, MintReport], None] = lambda rows, report: None,
    ) -> MintReport:
        """`write(wanted, customer, link columns)` for each customer that gets links;
        `on_skip(line, customer id, reason)` for the others. A customer asked for twice gets
        links once. Each batch adds its link sets to the campaign's funnel; the mint is an
        audited admin action."""
        return await self.mint_batches(batches(wanted, self._batch_size), write, on_skip, on_batch)

    async def mint_batches(
        self,
        batched: AsyncIterator[list[Wanted | Problem]],
        write: Callable[[Wanted, Customer, dict[str, str]], None],
        on_skip: Callable[[int, str, str], None] = lambda line, customer_id, reason: None,
        on_batch: Callable[[int, MintReport], None] = lambda rows, report: None,
    ) -> MintReport:
        """`mint`, for customers already in batches (`consenting_segment`'s). Batches overlap:
        while the client signs one, Redis reads the next on a core of its own (the read was
        a third of a mint's time, waited for). Each batch is counted and reported (its
        callbacks called) once the batch before it is, so in the input's order, and none is
        after a batch failed."""
        report = MintReport()
        run_id = secrets.token_hex(8)
        rows = 0
        await self._repo.record_audit(
            AuditEntry(
                kind=AuditKind.ADMIN,
                at=time.time(),
                action="links.mint",
                actor=self._actor,
                target=f"campaign:{self._campaign.id}",
            )
        )
        sinks = _Sinks(report, write, on_skip, on_batch)
        in_flight: list[_Batch] = []
        try:
            async for batch in batched:
                rows += len(batch)
                if len(in_flight) == IN_FLIGHT:  # memory stays bounded: a batch or two ahead
                    await in_flight.pop(0).done
                before = in_flight[-1] if in_flight else None
                checked = asyncio.get_running_loop().create_future()
                done = asyncio.ensure_future(
                    self._mint_batch(batch, rows, run_id, before, checked, sinks)
                )
                in_flight.append(_Batch(checked, done))
            for each in in_flight:
                await each.done
        except BaseException as failure:
            # (Those after a failed batch write nothing.)
            await end_in_flight([each.done for each in in_flight], failure)
            raise
        finally:
            await self._repo.end_run(run_id)
        return report

    async def _mint_batch(
        self,
        batch: list[Wanted | Problem],
        rows: int,
        run_id: str,
        before: _Batch | None,
        checked: asyncio.Future[None],
        sinks: _Sinks,
    ) -> None:
        """One batch: read (with the batches around it), signed, then, once the batch before
        it is done, counted in the funnel and reported."""
        catalog, firsts, states = await self._read(batch, run_id, before, checked)
        campaign = catalog.campaigns.get(self._campaign.id)
        active = campaign if campaign and campaign.state is CampaignState.ACTIVE else None
        done = self._sign(batch, active, catalog, firsts, states) if active else _Done()
        if before is not None:
            await before.done  # raises if it failed: nothing after a failure is reported
            # Read ahead, this batch may have seen the catalog before a revocation that came
            # while the batches before it were written: asked again (the version, a GET a
            # batch), so a revocation still stops the mint at the next batch reported.
            now = (await self._catalog.current()).campaigns.get(self._campaign.id)
            if now is None or now.state is not CampaignState.ACTIVE:
                active = None
        if active is None:
            raise MintError(
                f"campaign {self._campaign.id!r} was revoked while minting; "
                f"{sinks.report.minted} link set(s) were written before, and they will not open"
            )
        if done.minted:
            lifetime = self._campaign.link_lifetime_seconds
            await self._repo.count_funnel(
                funnel.issued(self._campaign.id, len(done.minted), lifetime)
            )
        sinks.report_batch(rows, done)

    async def _read(
        self,
        batch: list[Wanted | Problem],
        run_id: str,
        before: _Batch | None,
        checked: asyncio.Future[None],
    ) -> tuple[Catalog, dict[int, int], dict[str, CustomerState]]:
        """The catalog (a revoked campaign stops the mint), the batch's repeats of earlier
        lines (line -> the first), and its customers' states, read at once."""
        wanted = [item for item in batch if isinstance(item, Wanted)]

        async def firsts() -> dict[int, int]:
            try:
                # A segment names each customer once: nothing to remember per row.
                if self._segment:
                    return {}
                if before is not None:  # lines are checked in the input's order
                    await asyncio.shield(before.checked)
                return await self._repo.first_seen(
                    run_id, [(w.customer_id, w.line) for w in wanted]
                )
            finally:  # over, even failed: the next batch is not left waiting
                checked.set_result(None)

        ids = [w.customer_id for w in wanted if _is_id(w.customer_id)]
        # Every read is waited for, even when one fails: a repeat check still under way
        # would write the run's ids after the mint has ended and removed them.
        catalog, firsts_of, states = await asyncio.gather(
            self._catalog.current(),
            firsts(),
            self._repo.mint_states(ids, self._purpose),
            return_exceptions=True,
        )
        if isinstance(catalog, BaseException):
            raise catalog
        if isinstance(firsts_of, BaseException):
            raise firsts_of
        if isinstance(states, BaseException):
            raise states
        return catalog, firsts_of, states

    def _sign(
        self,
        batch: list[Wanted | Problem],
        campaign: Campaign,
        catalog: Catalog,
        firsts: dict[int, int],
        states: dict[str, CustomerState],
    ) -> _Done:
        """Who of the batch gets links, with the links, and who is skipped and why."""
        done = _Done()
        form_path = self._links.form_path(campaign.form_id)  # quoted once a batch
        for item in batch:
            if isinstance(item, Problem):
                done.skipped.append(
                    (SkipReason.BAD_ROW, item.line or 0, "", f"{SkipReason.BAD_ROW}: {item.reason}")
                )
                continue
            if item.line in firsts:
                done.skipped.append(
                    (
                        SkipReason.DUPLICATE,
                        item.line,
                        _shown(item),
                        f"duplicate of line {firsts[item.line]}",
                    )
                )
                continue
            state = states.get(item.customer_id, CustomerState(None, {}))
            reason = skip_reason(state, campaign, catalog, self._purpose)
            if reason is SkipReason.NO_CONSENT and self._segment:
                done.outside += 1
                continue
            if reason is not None:
                done.skipped.append((reason, item.line, _shown(item), self._explain(reason)))
                continue
            assert state.customer is not None  # skip_reason said so
            urls = personal_links(self._links, state.customer, campaign, form_path)
            done.minted.append((item, state.customer, urls))
        return done

    def _explain(self, reason: SkipReason) -> str:
        return f"no {self._purpose} consent" if reason is SkipReason.NO_CONSENT else reason.value


IN_FLIGHT = 3
"""Batches under way at once: one signed while the next ones are read."""


class _Batch(NamedTuple):
    checked: asyncio.Future[None]
    """Done once the batch's lines are checked for repeats: the next batch's check waits."""
    done: asyncio.Task[None]


class _Done:
    """A batch signed: its link sets, its skips (reason, line, id shown, why) and how many
    of a segment's customers are not in it."""

    def __init__(self) -> None:
        self.minted: list[tuple[Wanted, Customer, dict[str, str]]] = []
        self.skipped: list[tuple[SkipReason, int, str, str]] = []
        self.outside = 0


class _Sinks(NamedTuple):
    """Where a mint's batches are reported, in order."""

    report: MintReport
    write: Callable[[Wanted, Customer, dict[str, str]], None]
    on_skip: Callable[[int, str, str], None]
    on_batch: Callable[[int, MintReport], None]

    def report_batch(self, rows: int, done: _Done) -> None:
        for reason, line, shown, why in done.skipped:
            self.report.skip(reason)
            self.on_skip(line, shown, why)
        for wanted, customer, urls in done.minted:
            self.write(wanted, customer, urls)
        self.report.minted += len(done.minted)
        self.report.outside += done.outside
        self.on_batch(rows, self.report)


def _shown(item: Wanted) -> str:
    """The id that names a skipped line in the report: a cell that is no id may hold
    anything, and is not echoed."""
    return item.customer_id if _is_id(item.customer_id) else ""


def _is_id(value: str) -> bool:
    """Only an id can name a key: anything else is unknown without asking Redis."""
    return ID_RE.fullmatch(value) is not None


def mint_columns(input_columns: list[str]) -> list[str]:
    """The output's columns: the input's, then what the email tool needs that it lacks."""
    columns = input_columns or ["customer_id"]
    return columns + [c for c in (*MERGE_COLUMNS, *URL_COLUMNS) if c not in columns]


def output_rows(
    input_columns: list[str],
) -> Callable[[Wanted, Customer, dict[str, str]], list[str]]:
    """What makes an output row, its cells in `mint_columns(input_columns)`' order: the
    input's row with the links, and the merge fields as stored now (a stale address in the
    input must not receive a customer's personal links). Columns a row lacks stay empty."""
    columns = mint_columns(input_columns)

    def row(wanted: Wanted, customer: Customer, links: dict[str, str]) -> list[str]:
        cells = {"customer_id": customer.id, **wanted.columns}
        # MERGE_COLUMNS, named one by one: a mint builds a row a customer.
        cells["email"] = customer.email
        cells["first_name"] = customer.first_name
        cells["last_name"] = customer.last_name
        cells["locale"] = customer.locale
        cells.update(links)
        return [cells.get(name, "") for name in columns]

    def segment_row(_: Wanted, customer: Customer, links: dict[str, str]) -> list[str]:
        # A segment's columns are ours alone: the same cells, with no mapping to make.
        merge = [customer.id, customer.email, customer.first_name, customer.last_name]
        return [*merge, customer.locale, *[links[name] for name in URL_COLUMNS]]

    if input_columns:
        return row
    # segment_row writes its cells in this order by hand: checked once, against the columns
    # the header gets, so that the two cannot drift apart.
    if columns != ["customer_id", "email", "first_name", "last_name", "locale", *URL_COLUMNS]:
        raise AssertionError(f"segment_row does not write the columns {columns}")
    return segment_row
