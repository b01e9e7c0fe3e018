"""Customers from a CRM export at any size: CSV or NDJSON rows in, pipelined batches into Redis.

- Each row stands alone. A bad one is reported with its line and reason and skipped; the good
  ones are kept. A row is written whole or not at all (a batch is one transaction).
- The id is the CRM's own (external) id: a row upserts the customer with that id, and running
  the same file again changes nothing (an unchanged record is not written, a consent state
  already recorded is not recorded again).
- Values are normalised: emails trimmed and lower-cased, phone numbers to E.164
  (`phonenumbers`), languages (codes, or names in fi / sv / en) to fi / sv / en, an `owner`
  (a contact person's id, email or name) to its id.
- Every wrong field of a row is said, not only the first.
- `consent_<purpose>` cells (granted / withdrawn / empty) become consent events with source
  `import` and the notice version the operator names; an import never turns a withdrawal back
  into a grant (`consent.import_may_record`).
- Memory stays constant: rows stream through in batches, and the ids a run has seen (to catch a
  duplicate line) are kept in Redis, not in the process.

CSV columns: id, email, first_name, last_name, phone, company, job_title, locale, owner_id or
owner, consent_<purpose>, attr_<key>; a CRM's own headers are mapped to them by crm_columns.
NDJSON: one object per line with the same keys; `consents` and `attributes` may also be nested
objects.
"""

from __future__ import annotations

import asyncio
import enum
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypeVar

import msgspec

from prefill.consent import import_may_record
from prefill.contacts import Owners, OwnerUnresolved
from prefill.import_rows import (
    Problem,
    Row,
    batches,
    convert,
    csv_rows,
    end_in_flight,
    ndjson_rows,
)
from prefill.languages import LANGUAGES_SAID, locale_of
from prefill.models import (
    ID_PATTERN,
    AuditEntry,
    AuditKind,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    Customer,
)
from prefill.purposes import consent_purposes
from prefill.store import BATCH_SIZE, CustomerChange, Repository
from prefill.submissions import PHONE_REGION, normalise_phone

RECORD_COLUMNS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "company",
    "job_title",
    "locale",
    "owner_id",
)
OWNER = "owner"
"""A contact person by id, email or name, resolved to `owner_id` (a CRM writes a name)."""
CONSENT_PREFIXES = ("consent_", "consents.")
ATTRIBUTE_PREFIXES = ("attr_", "attributes.")
ID_RE = re.compile(ID_PATTERN)
T = TypeVar("T")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


NO_OWNERS = Owners()
UNREADABLE = "the stored record of this id no longer decodes: erase the customer, then import"


class CustomerRow(msgspec.Struct, frozen=True):
    line: int
    customer: Customer
    consents: dict[str, ConsentAction]
    """Purpose -> the consent state the row records."""


def _purpose_of(column: str) -> str | None:
    for prefix in CONSENT_PREFIXES:
        if column.startswith(prefix):
            return column.removeprefix(prefix)
    return None


def _attribute_of(column: str) -> str | None:
    for prefix in ATTRIBUTE_PREFIXES:
        if column.startswith(prefix):
            return column.removeprefix(prefix)
    return None


def column_problem(column: str, notice_versions: Mapping[str, str] | None) -> str | None:
    """What is wrong with a column (or NDJSON key), if anything. Without `notice_versions`
    consent columns are not checked for one (a parse that records nothing)."""
    purpose = _purpose_of(column)
    if purpose is not None:
        if purpose not in consent_purposes():
            known = ", ".join(consent_purposes())
            return f"{column}: {purpose!r} is not a consent purpose ({known})"
        if notice_versions is not None and purpose not in notice_versions:
            return (
                f"{column}: say which consent notice the customers agreed to, with "
                f"--notice-version {purpose}=VERSION"
            )
        return None
    if column in RECORD_COLUMNS or column == OWNER or _attribute_of(column):
        return None
    return (
        f"unknown column {column!r} (free attributes are attr_<name>; a CRM's own headers are "
        "mapped with --preset or --columns)"
    )


class _Column(NamedTuple):
    """What a column (or NDJSON key) holds: a problem, a consent purpose, a free attribute, or
    else a record field."""

    problem: str | None
    purpose: str | None
    attribute: str | None


class _Columns(dict[str, _Column]):
    """What each column holds, worked out once per column name, not per cell: a file's every
    row has the same columns. For one set of purposes with a notice version (or None)."""

    def __init__(self, notice_versions: Mapping[str, str] | None) -> None:
        super().__init__()
        self._given = None if notice_versions is None else dict.fromkeys(notice_versions, "")

    def __missing__(self, column: str) -> _Column:
        kind = _Column(
            column_problem(column, self._given), _purpose_of(column), _attribute_of(column)
        )
        if len(self) < MAX_COLUMNS:  # NDJSON keys are the file's to choose: memory stays bounded
            self[column] = kind
        return kind


MAX_COLUMNS = 4096
_ACTIONS = {action.value: action for action in ConsentAction}


def _header_problem(
    notice_versions: Mapping[str, str] | None, stated: Mapping[str, ConsentAction]
) -> Callable[[list[str]], str | None]:
    def check(header: list[str]) -> str | None:
        problems = [p for column in header if (p := column_problem(column, notice_versions))]
        problems += [
            f"consent_{purpose}: a column states it, and so does --consent {purpose}=…"
            for purpose in stated
            if f"consent_{purpose}" in header
        ]
        if {OWNER, "owner_id"} <= set(header):
            problems.append("owner and owner_id: give the contact person in one column")
        return "; ".join(problems) or None

    return check


def customer_row(
    line: int,
    row: Row,
    notice_versions: Mapping[str, str] | None = None,
    phone_region: str = PHONE_REGION,
    *,
    owners: Owners = NO_OWNERS,
    stated: Mapping[str, ConsentAction] | None = None,
    columns: _Columns | None = None,
) -> CustomerRow | Problem:
    """One row as a normalised customer and its consent states, or everything that is wrong
    with it. `stated`: the consent every row of the file states (`--consent`). `columns`: what
    the columns hold, kept by a caller reading many rows with the same `notice_versions`."""
    columns = _Columns(notice_versions) if columns is None else columns
    parsed = _customer_row(line, row, phone_region, owners, columns)
    if isinstance(parsed, Problem):
        key = row.get("id", "").strip()
        # The id names the row in the report; a cell that is no id may hold anything.
        return msgspec.structs.replace(parsed, key=key if ID_RE.fullmatch(key) else "")
    if stated:
        return msgspec.structs.replace(parsed, consents={**stated, **parsed.consents})
    return parsed


def _customer_row(
    line: int, row: Row, phone_region: str, owners: Owners, columns: _Columns
) -> CustomerRow | Problem:
    record: dict[str, Any] = {"attributes": {}}
    consents: dict[str, ConsentAction] = {}
    wrong: list[str] = []
    for column, cell in row.items():
        kind = columns[column]
        if kind.problem:
            wrong.append(kind.problem)
            continue
        value = cell.strip()
        if not value:
            continue
        if kind.purpose is not None:
            action = _ACTIONS.get(value.lower())
            if action is None:
                wrong.append(f"{column}: expected 'granted', 'withdrawn' or empty")
            else:
                consents[kind.purpose] = action
        elif kind.attribute is not None:
            record["attributes"][kind.attribute] = value
        else:
            record[column] = value
    wrong += _normalise(record, phone_region, owners)
    if not wrong:
        # Every field a row can give is text (a column of another field is unknown).
        customer = convert(line, record, Customer, text_only=True)
        if isinstance(customer, Customer):
            return CustomerRow(line, customer, consents)
    # msgspec stops at the first wrong field: check each on its own to say them all.
    wrong += [p for name, value in record.items() if (p := _field_problem(name, value))]
    return Problem(line, "; ".join(wrong))


def _normalise(record: dict[str, Any], phone_region: str, owners: Owners) -> list[str]:
    """Normalises the record's values in place; what is wrong with them (those are removed)."""
    wrong = [] if "id" in record else ["id: missing"]
    if "email" in record:
        record["email"] = record["email"].lower()
    else:
        wrong.append("email: missing")
    if "phone" in record:
        given = record.pop("phone")
        phone = _phone(given, phone_region)
        if phone is None:
            # A number written with its country code is wrong in some other way.
            hint = "" if given.startswith(("+", "00")) else " (give it with a country code)"
            wrong.append(f"phone: not a valid phone number{hint}")
        else:
            record["phone"] = phone
    if "locale" in record:
        locale = locale_of(record.pop("locale"))
        if locale is None:
            wrong.append(f"locale: not a supported language (use {LANGUAGES_SAID})")
        else:
            record["locale"] = locale
    if OWNER in record:
        owner = owners.resolve(record.pop(OWNER))
        if isinstance(owner, OwnerUnresolved):
            wrong.append(f"owner: {owner.value}")
        else:
            record["owner_id"] = owner
    return wrong


def _phone(value: str, region: str) -> str | None:
    """E.164, or None. A spreadsheet stores +46701234567 as the number 46701234567: digits
    that are no number of the region are tried with the '+' it dropped."""
    phone = normalise_phone(value, region)
    if phone is None and value.isdigit():
        return normalise_phone(f"+{value}", region)
    return phone


_VALID = {"id": "x", "email": "x@x.example"}
"""Stand-ins for the required fields, so that another field can be checked on its own."""


def _field_problem(name: str, value: Any) -> str | None:
    checked = convert(0, {**_VALID, name: value}, Customer)
    return checked.reason if isinstance(checked, Problem) else None


def read_customers(
    stream: Iterable[str],
    export_format: ExportFormat,
    source: str,
    notice_versions: Mapping[str, str] | None = None,
    phone_region: str = PHONE_REGION,
    *,
    delimiter: str = ",",
    rename: Callable[[list[str]], list[str]] | None = None,
    owners: Owners = NO_OWNERS,
    stated: Mapping[str, ConsentAction] | None = None,
) -> Iterator[CustomerRow | Problem]:
    """The export's rows, one at a time. A CSV header that cannot work (a required column
    missing, an unknown one, a consent column without a notice version) is ImportRejected
    before any row is read. `rename` maps a CRM's headers to our columns (crm_columns)."""
    rows = (
        csv_rows(
            stream,
            {"id", "email"},
            source,
            _header_problem(notice_versions, stated or {}),
            delimiter=delimiter,
            rename=rename,
        )
        if export_format is ExportFormat.CSV
        else ndjson_rows(stream)
    )
    columns = _Columns(notice_versions)
    for line, row in rows:
        yield (
            row
            if isinstance(row, Problem)
            else customer_row(
                line,
                row,
                notice_versions,
                phone_region,
                owners=owners,
                stated=stated,
                columns=columns,
            )
        )


class ImportSummary(msgspec.Struct):
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    consent_events: int = 0
    unknown_owners: int = 0
    """Customers whose owner_id names no contact person: they are shown a fallback contact."""

    def count(self, change: CustomerChange) -> None:
        self.created += change.status == "created"
        self.updated += change.status == "updated"
        self.unchanged += change.status == "unchanged"
        self.consent_events += len(change.consents)


def _decide(
    rows: list[CustomerRow], notice_versions: Mapping[str, str], actor: str
) -> Callable[[dict[str, dict[str, ConsentEvent]]], dict[str, list[ConsentEvent]]]:
    """The consent events the batch records, given the current state of its customers. A
    batch's events of one purpose and action are all alike: each is made once (and so
    encoded once, see CustomerStore.write_customer_batch), not once a customer."""
    wanted = {row.customer.id: row.consents for row in rows}
    now = time.time()
    alike: dict[tuple[str, ConsentAction], ConsentEvent] = {}

    def event(purpose: str, action: ConsentAction) -> ConsentEvent:
        made = alike.get((purpose, action))
        if made is None:
            made = alike[purpose, action] = ConsentEvent(
                purpose=purpose,
                action=action,
                at=now,
                source=ConsentSource.IMPORT,
                notice_version=notice_versions.get(purpose, ""),
                actor=actor,
            )
        return made

    def decide(current: dict[str, dict[str, ConsentEvent]]) -> dict[str, list[ConsentEvent]]:
        return {
            customer_id: [
                event(purpose, action)
                for purpose, action in wanted.get(customer_id, {}).items()
                if import_may_record(state.get(purpose), action)
            ]
            for customer_id, state in current.items()
        }

    return decide


async def import_customers(
    repository: Repository,
    rows: Iterable[CustomerRow | Problem],
    notice_versions: Mapping[str, str],
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    actor: str = "import",
    source: str = "",
    on_problem: Callable[[Problem], None] = lambda problem: None,
    on_change: Callable[[int, CustomerChange], None] = lambda line, change: None,
    on_batch: Callable[[ImportSummary], None] = lambda summary: None,
) -> ImportSummary:
    """Upsert the good rows batch by batch; report each bad row (`on_problem`) and each
    customer's outcome (`on_change`). With `dry_run`, decide everything and write nothing.
    An import is an audited admin action, recorded once its header has been read."""
    batch_import = _BatchImport(
        repository,
        notice_versions,
        actor,
        dry_run,
        contacts=set((await repository.load_catalog()).contacts),
        on_problem=on_problem,
        on_change=on_change,
    )
    # Batches overlap: while one is decided and written, the next is read and checked for
    # duplicates, and Redis runs the scripts and fsyncs on a core of its own meanwhile. The
    # duplicate checks still go in the file's order, and so do the reports (`_BatchImport`).
    in_flight: list[_Batch] = []
    try:
        audited = dry_run  # A dry run changes nothing, so there is nothing to audit.
        async for rows_read in batches(_yielding(rows), batch_size):
            if not audited:  # Once the header has been read: a refused file changed nothing.
                await _audit_import(repository, actor, source)
                audited = True
            if len(in_flight) == IN_FLIGHT:  # memory stays bounded: two batches ahead
                await in_flight.pop(0).done
            in_flight.append(batch_import.start(rows_read, in_flight[-1] if in_flight else None))
            on_batch(batch_import.summary)
        for batch in in_flight:
            await batch.done
        on_batch(batch_import.summary)
    except BaseException as failure:
        await end_in_flight([batch.done for batch in in_flight], failure)
        raise
    finally:
        await repository.end_run(batch_import.run_id)
    return batch_import.summary


IN_FLIGHT = 3
"""Batches under way at once: while one is written (and fsynced) and the next waits behind it
for its reads, the client parses a third, instead of waiting for Redis."""


YIELD_EVERY = 50
"""Rows read between two turns of the event loop: a turn costs a few µs, a row tens."""


async def _yielding(rows: Iterable[T]) -> AsyncIterator[T]:
    """The rows, letting the event loop run every few (the batch being written takes its
    replies then): reading a file never waits for anything."""
    for count, row in enumerate(rows):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        yield row


async def _audit_import(repository: Repository, actor: str, source: str) -> None:
    await repository.record_audit(
        AuditEntry(
            kind=AuditKind.ADMIN,
            at=time.time(),
            action="customers.import",
            actor=actor,
            target=f"file:{source}" if source else "",
        )
    )


class _BatchImport:
    """One import run, a batch at a time; its summary so far."""

    def __init__(
        self,
        repository: Repository,
        notice_versions: Mapping[str, str],
        actor: str,
        dry_run: bool,
        contacts: set[str],
        on_problem: Callable[[Problem], None],
        on_change: Callable[[int, CustomerChange], None],
    ) -> None:
        self._repo = repository
        self._versions = notice_versions
        self._actor = actor
        self._dry_run = dry_run
        self._contacts = contacts
        self._on_problem = on_problem
        self._on_change = on_change
        self.run_id = secrets.token_hex(8)
        self.summary = ImportSummary()

    def start(self, rows: list[CustomerRow | Problem], before: _Batch | None) -> _Batch:
        """The batch on its way: checked for duplicates once the batch `before` it is, then
        written, then reported once that batch is. Its customers are no other batch's (no id
        twice in a run), so batches can be written at once."""
        checked = asyncio.get_running_loop().create_future()
        return _Batch(checked, asyncio.ensure_future(self._run(rows, checked, before)))

    async def _run(
        self,
        rows: list[CustomerRow | Problem],
        checked: asyncio.Future[None],
        before: _Batch | None,
    ) -> None:
        good = [row for row in rows if isinstance(row, CustomerRow)]
        try:
            if before is not None:
                await asyncio.shield(before.checked)
            firsts = await self._repo.first_seen(
                self.run_id, [(r.customer.id, r.line) for r in good]
            )
        finally:  # Over, even failed: the batch after it is not left waiting (nor reported).
            checked.set_result(None)
        problems = [row for row in rows if isinstance(row, Problem)]
        problems += [
            Problem(r.line, f"duplicate id (first on line {firsts[r.line]})", r.customer.id)
            for r in good
            if r.line in firsts
        ]
        good = [row for row in good if row.line not in firsts]
        changes = await self._repo.write_customer_batch(
            [row.customer for row in good],
            _decide(good, self._versions, self._actor),
            dry_run=self._dry_run,
        )
        if before is not None:
            # Reported after the batch before, whose failure (if it failed) is the run's to
            # raise: what this batch wrote is still reported.
            await asyncio.wait([before.done])
        for row, change in zip(good, changes, strict=True):
            if change.status == "unreadable":
                problems.append(Problem(row.line, UNREADABLE, row.customer.id))
                continue
            self._on_change(row.line, change)
            self.summary.count(change)
            owner = row.customer.owner_id
            self.summary.unknown_owners += owner is not None and owner not in self._contacts
        for problem in sorted(problems, key=lambda p: p.line or 0):
            self._on_problem(problem)
        self.summary.rows += len(rows)
        self.summary.bad += len(problems)


class _Batch(NamedTuple):
    checked: asyncio.Future[None]
    """Done once the batch's ids are checked for duplicates: the next batch's check waits."""
    done: asyncio.Task[None]
