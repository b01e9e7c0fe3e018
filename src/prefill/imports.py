"""Importing customers, contact persons, forms and campaigns from files (the examples/ formats).

A file is parsed and validated whole before anything is written: one bad row rejects the file,
every bad row is reported with its line number and reason, and nothing is half-imported.

Formats:
- `customers.csv`: id,email,first_name,last_name,phone,company,job_title,locale,owner_id, then
  optional `consent_<purpose>` columns (granted / withdrawn / empty) and `attr_<key>` columns.
- `contacts.csv`: id,name,title_fi,title_sv,title_en,email,phone,languages (space separated),
  active (true/false),deputy_id,photo (a JPEG file name in photos/ next to the CSV),
  kind (person or team; optional).
- `forms.json`: a JSON list of Form objects (see models.Form).
- `campaigns.csv`: id,form_id,name,link_lifetime_days,state.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from prefill.consent import import_may_record
from prefill.models import (
    ATTRIBUTE_PATTERN,
    EMAIL_PATTERN,
    ID_PATTERN,
    ORIGIN_PATTERN,
    SUPPORTED_LOCALES,
    Campaign,
    CampaignState,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ContactPerson,
    Customer,
    Form,
)
from prefill.repository import Repository

T = TypeVar("T")
MAX_PHOTO_BYTES = 512 * 1024
CONSENT_PREFIX = "consent_"
ATTRIBUTE_PREFIX = "attr_"


class Problem(msgspec.Struct, frozen=True):
    line: int | None
    """1-based line of the row in its file; None for a problem between files."""
    reason: str

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"


class ImportRejected(Exception):
    """The file has bad rows; nothing from it was imported."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        super().__init__(f"{source}: {len(problems)} bad row(s); nothing was imported")
        self.source = source
        self.problems = problems


class ParsedCustomers(msgspec.Struct):
    customers: list[Customer]
    consents: dict[str, dict[str, ConsentAction]]
    """Customer id -> purpose -> the consent state the file records."""


def _rows(
    text: str,
    required: set[str],
    source: str,
    check_header: Callable[[list[str]], str | None] = lambda _: None,
) -> Iterator[tuple[int, dict[str, str] | Problem]]:
    """(line number, row or its problem). The header must hold the required columns and pass
    `check_header` (which returns what is wrong with it, if anything)."""
    # Spreadsheet exports ("CSV UTF-8") start with a byte-order mark: not part of the header.
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = list(reader.fieldnames or [])
    missing = required - set(header)
    wrong = f"missing column(s): {', '.join(sorted(missing))}" if missing else check_header(header)
    if wrong:
        raise ImportRejected(source, [Problem(1, wrong)])
    for row in reader:
        if None in row:  # DictReader keeps surplus values under the key None.
            yield reader.line_num, Problem(reader.line_num, "more values than columns")
            continue
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items()}


_PATTERN_MEANINGS = {
    ID_PATTERN: "use only letters, digits, '_', '.' and '-', at most 64 characters",
    EMAIL_PATTERN: "not a valid email address",
    ORIGIN_PATTERN: "must be scheme://host[:port], e.g. https://www.example.com",
    ATTRIBUTE_PATTERN: "must be email, first_name, last_name, phone, company, job_title or "
    "attributes.<key>",
}


def describe(error: msgspec.ValidationError) -> str:
    """msgspec's message as `field: reason`, with regular expressions said in words."""
    message, _, path = str(error).partition(" - at `$")
    field = path.rstrip("`").lstrip(".")
    for pattern, meaning in _PATTERN_MEANINGS.items():
        if repr(pattern) in message:  # msgspec quotes the pattern with repr()
            message = meaning
    return f"{field}: {message}" if field else message


def _convert(line: int, data: Mapping[str, Any], kind: type[T]) -> T | Problem:
    try:
        return msgspec.convert(data, kind, strict=False)  # CSV cells are text: "45" is 45
    except msgspec.ValidationError as exc:
        return Problem(line, describe(exc))


def _collect(source: str, parsed: list[tuple[int, T | Problem]], id_of: Any) -> list[T]:
    """The parsed records, or ImportRejected with every problem including duplicate ids."""
    problems = [p for _, p in parsed if isinstance(p, Problem)]
    seen: dict[str, int] = {}
    records: list[T] = []
    for line, record in parsed:
        if isinstance(record, Problem):
            continue
        record_id = id_of(record)
        if record_id in seen:
            problems.append(
                Problem(line, f"duplicate id {record_id!r} (first on line {seen[record_id]})")
            )
        seen.setdefault(record_id, line)
        records.append(record)
    if problems:
        raise ImportRejected(source, sorted(problems, key=lambda p: p.line or 0))
    return records


_CUSTOMER_COLUMNS = {"id", "email"}


def _bad_consent_column(header: list[str]) -> str | None:
    """Consent purposes become Redis hash fields and audit ids: the same rules as ids."""
    for column in header:
        purpose = column.removeprefix(CONSENT_PREFIX)
        if column.startswith(CONSENT_PREFIX) and not re.fullmatch(ID_PATTERN, purpose):
            return f"{column}: {_PATTERN_MEANINGS[ID_PATTERN]}"
    return None


def parse_customers(text: str, source: str = "customers.csv") -> ParsedCustomers:
    parsed: list[tuple[int, Customer | Problem]] = []
    consents: dict[str, dict[str, ConsentAction]] = {}
    for line, row in _rows(text, _CUSTOMER_COLUMNS, source, _bad_consent_column):
        if isinstance(row, Problem):
            parsed.append((line, row))
            continue
        record: dict[str, Any] = {
            k: v
            for k, v in row.items()
            if v and not k.startswith((CONSENT_PREFIX, ATTRIBUTE_PREFIX))
        }
        record["email"] = row.get("email", "").lower()
        record["attributes"] = {
            k.removeprefix(ATTRIBUTE_PREFIX): v
            for k, v in row.items()
            if k.startswith(ATTRIBUTE_PREFIX) and v
        }
        row_consents: dict[str, ConsentAction] = {}
        bad_consent: Problem | None = None
        for column, value in row.items():
            if column.startswith(CONSENT_PREFIX) and value:
                try:
                    row_consents[column.removeprefix(CONSENT_PREFIX)] = ConsentAction(value.lower())
                except ValueError:
                    bad_consent = Problem(
                        line, f"{column}: expected 'granted', 'withdrawn' or empty, got {value!r}"
                    )
        if bad_consent is not None:
            parsed.append((line, bad_consent))
            continue
        customer = _convert(line, record, Customer)
        parsed.append((line, customer))
        if isinstance(customer, Customer):
            consents[customer.id] = row_consents
    customers = _collect(source, parsed, lambda c: c.id)
    return ParsedCustomers(customers=customers, consents=consents)


_CONTACT_COLUMNS = {"id", "name", "email"}


def parse_contacts(
    text: str, photo_dir: Path | None, source: str = "contacts.csv"
) -> tuple[list[ContactPerson], dict[str, bytes]]:
    """Contact persons and their photos (JPEG bytes by contact id)."""
    parsed: list[tuple[int, ContactPerson | Problem]] = []
    photos: dict[str, bytes] = {}
    for line, row in _rows(text, _CONTACT_COLUMNS, source):
        if isinstance(row, Problem):
            parsed.append((line, row))
            continue
        photo, photo_problem = _read_photo(line, row.get("photo", ""), photo_dir)
        record: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"],
            "email": row["email"].lower(),
            "phone": row.get("phone", ""),
            "title": {
                loc: row[f"title_{loc}"] for loc in SUPPORTED_LOCALES if row.get(f"title_{loc}")
            },
            "languages": row.get("languages", "").split(),
            "active": row.get("active", "true").lower() != "false",
            "deputy_id": row.get("deputy_id") or None,
            "has_photo": photo is not None,
            "kind": row.get("kind") or "person",
        }
        if photo_problem is not None:
            parsed.append((line, photo_problem))
            continue
        contact = _convert(line, record, ContactPerson)
        parsed.append((line, contact))
        if isinstance(contact, ContactPerson) and photo is not None:
            photos[contact.id] = photo
    return _collect(source, parsed, lambda c: c.id), photos


def _read_photo(
    line: int, name: str, photo_dir: Path | None
) -> tuple[bytes | None, Problem | None]:
    if not name:
        return None, None
    if photo_dir is None or "/" in name or "\\" in name or name.startswith("."):
        return None, Problem(line, f"photo: {name!r} must be a file name in the photos folder")
    path = photo_dir / name
    if not path.is_file():
        return None, Problem(line, f"photo: {path} does not exist")
    data = path.read_bytes()
    if len(data) > MAX_PHOTO_BYTES or not data.startswith(b"\xff\xd8"):
        return None, Problem(
            line, f"photo: {name} must be a JPEG of at most {MAX_PHOTO_BYTES} bytes"
        )
    return data, None


def parse_forms(data: bytes, source: str = "forms.json") -> list[Form]:
    try:
        items = msgspec.json.decode(data, type=list[dict[str, Any]])
    except msgspec.DecodeError as exc:
        raise ImportRejected(source, [Problem(1, f"not valid JSON: {exc}")]) from exc
    except msgspec.ValidationError as exc:
        raise ImportRejected(source, [Problem(1, f"expected a list of forms: {exc}")]) from exc
    # JSON has no rows: the "line" is the form's 1-based position in the list.
    parsed = [(index, _checked_form(index, item)) for index, item in enumerate(items, 1)]
    reported = [
        (index, Problem(index, f"form #{index}: {p.reason}") if isinstance(p, Problem) else p)
        for index, p in parsed
    ]
    return _collect(source, reported, lambda f: f.id)


def _checked_form(index: int, item: Mapping[str, Any]) -> Form | Problem:
    form = _convert(index, item, Form)
    if isinstance(form, Form) and (problems := form_problems(form)):
        return Problem(index, "; ".join(problems))
    return form


def form_problems(form: Form) -> list[str]:
    """What a form needs beyond its shape: an email field (a new lead is stored by email), and
    no field accepting more than the customer attribute it fills can hold."""
    problems: list[str] = []
    if not any(f.prefill_from == "email" for f in form.fields):
        problems.append("needs a field with prefill_from 'email' (new leads are stored by it)")
    problems += [
        f"field {f.name!r}: max_length {f.max_length} is more than the "
        f"{f.value_max_length} characters {f.prefill_from} can hold"
        for f in form.fields
        if f.value_max_length < f.max_length
    ]
    return problems


_CAMPAIGN_COLUMNS = {"id", "form_id"}


def parse_campaigns(text: str, source: str = "campaigns.csv") -> list[Campaign]:
    parsed: list[tuple[int, Campaign | Problem]] = []
    for line, row in _rows(text, _CAMPAIGN_COLUMNS, source):
        if isinstance(row, Problem):
            parsed.append((line, row))
            continue
        record = {k: v for k, v in row.items() if v}
        parsed.append((line, _convert(line, record, Campaign)))
    return _collect(source, parsed, lambda c: c.id)


async def import_customers(
    repository: Repository,
    parsed: ParsedCustomers,
    notice_versions: Mapping[str, str],
    actor: str = "import",
) -> tuple[int, int]:
    """Write customers; a consent column becomes an `import` consent event only where the
    policy allows (`consent.import_may_record`): importing the same file twice changes nothing,
    and an export never undoes a customer's withdrawal.

    Returns (customers written, consent events recorded)."""
    now = time.time()

    def decide(current: dict[str, dict[str, ConsentEvent]]) -> dict[str, list[ConsentEvent]]:
        events: dict[str, list[ConsentEvent]] = {}
        for customer_id, state in current.items():
            for purpose, action in parsed.consents.get(customer_id, {}).items():
                if import_may_record(state.get(purpose), action):
                    events.setdefault(customer_id, []).append(
                        ConsentEvent(
                            purpose=purpose,
                            action=action,
                            at=now,
                            source=ConsentSource.IMPORT,
                            notice_version=notice_versions.get(purpose, ""),
                            actor=actor,
                        )
                    )
        return events

    recorded = (await repository.save_customers(parsed.customers, decide)).consent_events
    return len(parsed.customers), recorded


def check_references(
    forms: list[Form],
    campaigns: list[Campaign],
    contacts: list[ContactPerson],
    known_form_ids: set[str],
    known_contact_ids: set[str],
) -> list[Problem]:
    """Campaigns must name a form, deputies and fallbacks an existing contact person."""
    form_ids = known_form_ids | {f.id for f in forms}
    contact_ids = known_contact_ids | {c.id for c in contacts}
    problems = [
        Problem(None, f"campaign {c.id!r}: unknown form {c.form_id!r}")
        for c in campaigns
        if c.form_id not in form_ids
    ]
    problems += [
        Problem(None, f"contact {c.id!r}: unknown deputy {c.deputy_id!r}")
        for c in contacts
        if c.deputy_id and c.deputy_id not in contact_ids
    ]
    problems += [
        Problem(None, f"form {f.id!r}: unknown fallback contact {f.fallback_contact_id!r}")
        for f in forms
        if f.fallback_contact_id and f.fallback_contact_id not in contact_ids
    ]
    problems += [Problem(None, f"form {f.id!r}: {p}") for f in forms for p in form_problems(f)]
    return problems


def keep_revocations(campaigns: list[Campaign], existing: Mapping[str, Campaign]) -> list[Campaign]:
    """Campaigns as imported, except that one already revoked stays revoked: revoking kills
    links for good, and re-importing a file must not bring them back."""
    return [
        msgspec.structs.replace(c, state=CampaignState.REVOKED)
        if c.id in existing and existing[c.id].state is CampaignState.REVOKED
        else c
        for c in campaigns
    ]


def notice_versions_of(forms: list[Form]) -> dict[str, str]:
    """Purpose -> the notice version the forms present: what an import from those forms
    recorded consent against."""
    return {notice.purpose: notice.version for form in forms for notice in form.consents}


async def import_directory(repository: Repository, directory: Path) -> dict[str, int]:
    """Import an examples-style folder: contacts, forms and campaigns, then customers.

    Every file is validated before anything is written."""
    contacts, photos = parse_contacts(
        (directory / "contacts.csv").read_text(encoding="utf-8"), directory / "photos"
    )
    forms = parse_forms((directory / "forms.json").read_bytes())
    campaigns = parse_campaigns((directory / "campaigns.csv").read_text(encoding="utf-8"))
    customers = parse_customers((directory / "customers.csv").read_text(encoding="utf-8"))
    problems = check_references(forms, campaigns, contacts, set(), set())
    if problems:
        raise ImportRejected(str(directory), problems)
    await repository.save_catalog(forms=forms, contacts=contacts, photos=photos)
    await repository.upsert_campaigns(campaigns, keep_revocations)
    await import_customers(repository, customers, notice_versions_of(forms))
    return {
        "contacts": len(contacts),
        "forms": len(forms),
        "campaigns": len(campaigns),
        "customers": len(customers.customers),
    }
