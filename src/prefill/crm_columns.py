"""Which column of a CRM's export is which customer field: presets for the standard contact
exports of HubSpot, Salesforce and Mailchimp, and `--columns 'Their header=field'` for the rest.

Headers are matched ignoring case and spacing ("FirstName" in a Data Loader export is
"FIRSTNAME" in another). A preset never maps a consent column: a CRM's subscription flags are
not a record of consent to a purpose under a notice, and an import records only the consent
a file states (a column mapped to `consent_<purpose>` by the operator, or `--consent`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping

import msgspec

from prefill.customer_import import OWNER, RECORD_COLUMNS
from prefill.import_rows import HeaderProblem
from prefill.purposes import consent_purposes

SKIP = "-"
"""`--columns 'Their header=-'`: leave the column out (also one a preset would map)."""
FIELDS = (*RECORD_COLUMNS, OWNER)
"""What a column can be, besides `consent_<purpose>` and `attr_<name>`. `owner` is a contact
person by id, email or name; `owner_id` an id kept as it is."""
REQUIRED = ("id", "email")
_ATTRIBUTE = re.compile(r"[A-Za-z0-9_-]+")
"""A free attribute's name, as a form field's `prefill_from` can name it."""


class Preset(msgspec.Struct, frozen=True):
    name: str
    columns: dict[str, tuple[str, ...]]
    """Field -> the export's headers for it, the first one present used."""


PRESETS = {
    # HubSpot: Contacts > Export, headers are the properties' labels ("Record ID" was
    # "Contact ID" before 2023). "Contact owner" holds the owner's name.
    "hubspot": Preset(
        "HubSpot",
        {
            "id": ("Record ID", "Contact ID"),
            "email": ("Email",),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "phone": ("Phone Number", "Mobile Phone Number"),
            "company": ("Company Name",),
            "job_title": ("Job Title",),
            "locale": ("Preferred language",),
            "owner": ("Contact owner",),
        },
    ),
    # Salesforce: a contacts report exported as CSV (field labels), or a Data Loader export of
    # Contact (API names, upper-cased by Data Loader).
    "salesforce": Preset(
        "Salesforce",
        {
            "id": ("Contact ID", "Id"),
            "email": ("Email",),
            "first_name": ("First Name", "FirstName"),
            "last_name": ("Last Name", "LastName"),
            "phone": ("Phone", "Mobile", "MobilePhone"),
            "company": ("Account Name", "Account.Name"),
            "job_title": ("Title",),
            "owner": ("Contact Owner",),
        },
    ),
    # Mailchimp: Audience > Export audience (subscribed_members_export_*.csv). EUID is the
    # address's id across the whole account, so two audiences' exports upsert one customer.
    "mailchimp": Preset(
        "Mailchimp",
        {
            "id": ("EUID", "LEID"),
            "email": ("Email Address",),
            "first_name": ("First Name",),
            "last_name": ("Last Name",),
            "phone": ("Phone Number",),
            "company": ("Company",),
            "locale": ("Language",),
        },
    ),
}


def _key(header: str) -> str:
    return " ".join(header.casefold().split())


def target_problem(field: str) -> str | None:
    """What is wrong with a field a column is mapped to, if anything."""
    if field in FIELDS or field == SKIP:
        return None
    if field.startswith("consent_"):
        purpose = field.removeprefix("consent_")
        if purpose in consent_purposes():
            return None
        return f"{purpose!r} is not a consent purpose ({', '.join(consent_purposes())})"
    if field.startswith("attr_") and _ATTRIBUTE.fullmatch(field.removeprefix("attr_")):
        return None
    return (
        f"{field!r} is not a field: use {', '.join(FIELDS)}, consent_<purpose>, attr_<name>, "
        f"or {SKIP} to leave the column out"
    )


def parse_columns(given: str) -> dict[str, str]:
    """`Their header=field,…` as {their header: field} (a header with a comma in it is
    quoted: `"Company, Inc."=company`); ValueError says what is wrong."""
    mapping: dict[str, str] = {}
    for item in filter(str.strip, next(csv.reader([given], skipinitialspace=True), [])):
        header, sep, field = item.rpartition("=")
        header, field = header.strip(), field.strip()
        if not sep or not header or not field:
            raise ValueError(f"{item.strip()!r}: expected 'Their header=field'")
        if problem := target_problem(field):
            raise ValueError(problem)
        if _key(header) in map(_key, mapping):
            raise ValueError(f"{header!r} is mapped twice")
        mapping[header] = field
    return mapping


class ColumnMap(msgspec.Struct, frozen=True):
    """A preset and the operator's own mapping (which wins over the preset's)."""

    preset: Preset | None = None
    given: dict[str, str] = msgspec.field(default_factory=dict)

    def rename(self, header: list[str], note: Callable[[str], None]) -> list[str]:
        """Our name for each of the file's columns ("" for one left out, listed by `note`);
        HeaderProblem when a required field has no column or `--columns` names a header the
        file lacks."""
        keys = [_key(name) for name in header]
        given = {_key(theirs): field for theirs, field in self.given.items()}
        if absent := [theirs for theirs in self.given if _key(theirs) not in keys]:
            names = ", ".join(map(repr, absent))
            raise HeaderProblem(f"--columns names {names}, not a column of this file")
        ours = [given.get(key, "") for key in keys]
        for field, theirs in (self.preset.columns if self.preset else {}).items():
            if field in ours:
                continue
            # The first of the preset's headers the file has, and the operator did not map.
            free = [key for key in map(_key, theirs) if key in keys and key not in given]
            if free:
                ours[keys.index(free[0])] = field
        for at, name in enumerate(header):
            if not ours[at] and keys[at] not in given and _own_column(name):
                ours[at] = name  # our own format's column, by its own name
        self._check(header, ours)
        left_out = [
            name
            for name, key, field in zip(header, keys, ours, strict=True)
            if not field and given.get(key) != SKIP
        ]
        if left_out:
            note(f"left out {len(left_out)} column(s) no field is mapped to: {', '.join(left_out)}")
        return [field if field != SKIP else "" for field in ours]

    def _check(self, header: list[str], ours: list[str]) -> None:
        for field in REQUIRED:
            if field not in ours:
                raise HeaderProblem(f"no column for {field}: {self._hint(field)}")
        for field in set(ours) - {"", SKIP}:
            theirs = [name for name, mapped in zip(header, ours, strict=True) if mapped == field]
            if len(theirs) > 1:
                raise HeaderProblem(f"{' and '.join(map(repr, theirs))} are both mapped to {field}")

    def _hint(self, field: str) -> str:
        expected = self.preset.columns.get(field, ()) if self.preset else ()
        said = " or ".join(map(repr, expected))
        where = f"a {self.preset.name} export names it {said}; " if self.preset and said else ""
        return f"{where}map one with --columns 'Their header={field}'"


def _own_column(name: str) -> bool:
    return name in FIELDS or name.startswith(("consent_", "attr_"))


def own_columns(header: list[str]) -> list[str]:
    """A header of our own format, as it is. One without `id` or `email` is most likely a CRM's
    export: HeaderProblem says how to read it, naming the preset whose columns it has."""
    missing = sorted(set(REQUIRED) - set(header))
    if not missing:
        return header
    wrong = f"missing column(s): {', '.join(missing)}"
    fits = _presets_fitting(header)
    if fits:
        named = " or ".join(f"--preset {name}" for name in fits)
        export = " or ".join(PRESETS[name].name for name in fits)
        raise HeaderProblem(f"{wrong}: it looks like a {export} export: read it with {named}")
    presets = ", ".join(PRESETS)
    raise HeaderProblem(
        f"{wrong}: a CRM's export is read with --preset ({presets}), or its columns mapped "
        "with --columns 'Their header=field,…'"
    )


def _presets_fitting(header: list[str]) -> list[str]:
    """The presets that find every required field in `header`, those with most of their
    fields first among them: a HubSpot export's "Contact ID" and "Email" are a Salesforce
    report's too, but its "Phone Number" is not."""
    keys = {_key(name) for name in header}
    found = {
        name: sum(any(_key(h) in keys for h in theirs) for theirs in preset.columns.values())
        for name, preset in PRESETS.items()
        if all(any(_key(h) in keys for h in preset.columns[field]) for field in REQUIRED)
    }
    return [name for name, count in found.items() if count == max(found.values())]


def column_map(preset: str | None, given: Mapping[str, str]) -> ColumnMap | None:
    """The map for the options given; None for a file in our own format (read as it is)."""
    if preset is None and not given:
        return None
    return ColumnMap(PRESETS[preset] if preset else None, dict(given))
