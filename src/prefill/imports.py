"""Importing the catalog (contact persons, forms, campaigns) and the examples/ folder.

A catalog file is parsed and validated whole before anything is written: one bad row rejects the
file, every bad row is reported with its line number and reason, and nothing is half-imported.
Customers, which come by the million from a CRM, have their own streaming import that keeps the
good rows: customer_import.py.

Formats:
- `customers.csv`: see customer_import.py.
- `contacts.csv`: id,name,title_fi,title_sv,title_en,email,phone,languages (space separated),
  active (true/false),deputy_id,photo (a JPEG file name in photos/ next to the CSV),
  kind (person or team; optional).
- `forms.json`: a JSON list of Form objects (see models.Form).
- `campaigns.csv`: id,form_id,name,link_lifetime_days,state.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from prefill.customer_import import (
    CustomerRow,
    ExportFormat,
    ImportSummary,
    import_customers,
    read_customers,
)
from prefill.import_rows import ImportRejected, Problem, convert, csv_rows
from prefill.models import (
    SCALES,
    SUPPORTED_LOCALES,
    Campaign,
    CampaignState,
    ConsentAction,
    ContactPerson,
    Customer,
    Form,
)
from prefill.store import Repository

T = TypeVar("T")
MAX_PHOTO_BYTES = 512 * 1024

__all__ = ["ImportRejected", "Problem"]  # Where the catalog's callers have always found them.


class ParsedCustomers(msgspec.Struct):
    customers: list[Customer]
    consents: dict[str, dict[str, ConsentAction]]
    """Customer id -> purpose -> the consent state the file records."""


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


def parse_customers(text: str, source: str = "customers.csv") -> ParsedCustomers:
    """A small customers CSV, all or nothing (the examples): ImportRejected with every bad row,
    duplicate ids included."""
    rows = list(read_customers(io.StringIO(text, newline=""), ExportFormat.CSV, source))
    parsed: list[tuple[int, CustomerRow | Problem]] = [
        (row.line or 0, row) if isinstance(row, Problem) else (row.line, row) for row in rows
    ]
    good = _collect(source, parsed, lambda row: row.customer.id)
    return ParsedCustomers(
        customers=[row.customer for row in good],
        consents={row.customer.id: row.consents for row in good},
    )


_CONTACT_COLUMNS = {"id", "name", "email"}


def parse_contacts(
    text: str, photo_dir: Path | None, source: str = "contacts.csv"
) -> tuple[list[ContactPerson], dict[str, bytes]]:
    """Contact persons and their photos (JPEG bytes by contact id)."""
    parsed: list[tuple[int, ContactPerson | Problem]] = []
    photos: dict[str, bytes] = {}
    for line, row in csv_rows(io.StringIO(text, newline=""), _CONTACT_COLUMNS, source):
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
        contact = convert(line, record, ContactPerson)
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
        return None, Problem(line, f"photo: {path}: no such file")
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
    form = convert(index, item, Form)
    if isinstance(form, Form) and (problems := form_problems(form)):
        return Problem(index, "; ".join(problems))
    return form


def form_problems(form: Form) -> list[str]:
    """What a form needs beyond its shape: an email field (a new lead is stored by email), no
    field accepting more than the customer attribute it fills can hold, and no prefilled
    rating."""
    problems: list[str] = []
    if not any(f.prefill_from == "email" for f in form.fields):
        problems.append("needs a field with prefill_from 'email' (new leads are stored by it)")
    problems += [
        f"field {f.name!r}: max_length {f.max_length} is more than the "
        f"{f.value_max_length} characters {f.prefill_from} can hold"
        for f in form.fields
        if f.value_max_length < f.max_length
    ]
    problems += [
        f"field {f.name!r}: a {f.type} answer is the customer's own, never prefilled"
        for f in form.fields
        if f.type in SCALES and f.prefill_from is not None
    ]
    return problems


_CAMPAIGN_COLUMNS = {"id", "form_id"}


def parse_campaigns(text: str, source: str = "campaigns.csv") -> list[Campaign]:
    parsed: list[tuple[int, Campaign | Problem]] = []
    for line, row in csv_rows(io.StringIO(text, newline=""), _CAMPAIGN_COLUMNS, source):
        if isinstance(row, Problem):
            parsed.append((line, row))
            continue
        record = {k: v for k, v in row.items() if v}
        parsed.append((line, convert(line, record, Campaign)))
    return _collect(source, parsed, lambda c: c.id)


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


FOLDER_FILES = ("contacts.csv", "forms.json", "campaigns.csv", "customers.csv")
"""What an examples-style folder holds (and photos/, which a contact may name)."""


async def import_directory(repository: Repository, directory: Path) -> dict[str, int]:
    """Import an examples-style folder: contacts, forms and campaigns, then customers.

    Every file is validated before anything is written."""
    missing = [name for name in FOLDER_FILES if not (directory / name).is_file()]
    if missing:
        raise ImportRejected(str(directory), [Problem(None, f"{n}: no such file") for n in missing])
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
    await import_parsed_customers(repository, customers, notice_versions_of(forms))
    return {
        "contacts": len(contacts),
        "forms": len(forms),
        "campaigns": len(campaigns),
        "customers": len(customers.customers),
    }


async def import_parsed_customers(
    repository: Repository, parsed: ParsedCustomers, notice_versions: Mapping[str, str]
) -> ImportSummary:
    """Customers already parsed whole, through the same upsert as a streamed export."""
    rows = [
        CustomerRow(line, customer, parsed.consents.get(customer.id, {}))
        for line, customer in enumerate(parsed.customers, 2)
    ]
    return await import_customers(repository, rows, notice_versions, source="customers.csv")
