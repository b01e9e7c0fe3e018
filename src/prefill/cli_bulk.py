"""`prefill import customers`: a CRM's volumes, with progress and reports.

It streams: rows go through in batches, progress goes to standard error (a bar at a terminal,
a line every few seconds otherwise), and what could not be done is listed with its line number
and reason, on standard error and in a CSV report (cli_reports.py).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click
import phonenumbers

from prefill.cli_import_options import (
    crm_export_options,
    parse_column_options,
    parse_dialect_options,
    parse_stated_consents,
    say_dialect,
)
from prefill.cli_reports import SHOWN, UNREADABLE_INPUT, LineReport, unreadable
from prefill.cli_support import (
    ExistingPath,
    cli_actor,
    collector_for_bulk,
    data_dir_option,
    load_settings,
    report_rejected,
    run_with_repository,
)
from prefill.contacts import Owners
from prefill.crm_columns import own_columns
from prefill.customer_import import ExportFormat, ImportSummary, import_customers, read_customers
from prefill.import_rows import ImportRejected, open_detected
from prefill.progress import Progress
from prefill.purposes import consent_purposes
from prefill.store import CustomerChange, Repository
from prefill.submissions import PHONE_REGION


def parse_notice_versions(given: tuple[str, ...]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for item in given:
        purpose, sep, version = item.partition("=")
        if not sep or not purpose or not version:
            raise click.BadParameter(
                f"{item!r}: expected PURPOSE=VERSION", param_hint="--notice-version"
            )
        if purpose not in consent_purposes():
            raise click.BadParameter(
                f"{purpose!r} is not a consent purpose ({', '.join(consent_purposes())})",
                param_hint="--notice-version",
            )
        versions[purpose] = version
    return versions


def _note(progress: Progress, name: str, message: str) -> None:
    progress.note(f"{name}: {message}")


def format_of(path: str, given: str | None) -> ExportFormat:
    if given is not None:
        return ExportFormat(given)
    name = path.removesuffix(".gz")
    return ExportFormat.NDJSON if name.endswith((".ndjson", ".jsonl")) else ExportFormat.CSV


@click.command(name="customers")
@click.argument("file", type=ExistingPath(dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "export_format",
    type=click.Choice([f.value for f in ExportFormat]),
    default=None,
    help="csv or ndjson (default: from the name: .ndjson or .jsonl, else csv; .gz is read "
    "compressed).",
)
@click.option(
    "--notice-version",
    "notice_versions",
    multiple=True,
    metavar="PURPOSE=VERSION",
    help="For each consent_<purpose> column: the version of the consent notice the customers "
    "agreed to, recorded with each consent event as evidence. Repeat per purpose.",
)
@click.option("--dry-run", is_flag=True, help="Check every row and say what would change.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The report of bad rows (CSV: line, customer_id, reason); default: "
    "<file name>.errors.csv in the current folder.",
)
@click.option(
    "--phone-region",
    default=PHONE_REGION,
    show_default=True,
    help="Country (ISO 3166 code) of phone numbers written without a country code.",
)
@crm_export_options
@data_dir_option
def import_customers_command(
    file: str,
    export_format: str | None,
    notice_versions: tuple[str, ...],
    dry_run: bool,
    errors_path: Path | None,
    phone_region: str,
    preset: str | None,
    columns_given: str,
    consents_stated: tuple[str, ...],
    encoding: str | None,
    delimiter: str | None,
    data_dir: Path | None,
) -> None:
    """Customers from a CRM export (CSV or NDJSON), upserted by id; bad rows are reported and
    skipped, and running the same file again changes nothing."""
    versions = parse_notice_versions(notice_versions)
    stated = parse_stated_consents(consents_stated, versions)
    read_as = format_of(file, export_format)
    mapping = parse_column_options(preset, columns_given, read_as)
    encoding, delimiter = parse_dialect_options(encoding, delimiter)
    region = phone_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(f"{phone_region!r} is not a country code", param_hint="region")
    name = "stdin" if file == "-" else Path(file).name
    # A dry run writes nothing, a report included, unless asked to.
    default_report = None if dry_run else Path(f"{name}.errors.csv")
    errors = LineReport(errors_path or default_report, name, "--errors")
    changes = ChangeList(dry_run)
    settings = load_settings(data_dir)

    async def action(repository: Repository) -> ImportSummary:
        owners = Owners((await repository.load_catalog()).contacts.values())
        with open_detected(file, encoding, delimiter) as (text, fraction, dialect):
            say_dialect(name, dialect, read_as)
            progress = Progress(f"import {name}", sys.stderr, fraction)
            errors.echo = progress.note
            changes.echo = lambda message: progress.note(message, sys.stdout)
            note = functools.partial(_note, progress, name)
            rename = (
                own_columns if mapping is None else functools.partial(mapping.rename, note=note)
            )
            rows = read_customers(
                text,
                read_as,
                name,
                versions,
                region,
                delimiter=dialect.delimiter,
                rename=rename,
                owners=owners,
                stated=stated,
            )
            summary = await import_customers(
                repository,
                rows,
                versions,
                dry_run=dry_run,
                actor=cli_actor().name,
                source=name,
                on_problem=lambda p: errors.add(p.line or 0, p.key, p.reason),
                on_change=changes.add,
                on_batch=lambda done: progress.update(done.rows),
            )
            progress.finish()
            return summary

    finished = False
    try:
        with collector_for_bulk():  # as a mint's: the collector's passes, not the rows
            summary = run_with_repository(settings, action)
        finished = True
    except ImportRejected as exc:
        raise report_rejected(exc) from exc
    except UNREADABLE_INPUT as exc:
        so_far = "rows before it may be imported, not all; importing the whole file again is safe"
        raise unreadable(name, exc, so_far) from exc
    finally:
        errors.close(finished=finished)
    changes.close()
    click.echo(import_summary_text(name, summary, dry_run))
    if summary.bad and dry_run:
        raise click.ClickException(f"dry run: {summary.bad:,} bad row(s) would be skipped")
    if summary.bad:
        raise click.ClickException(
            f"{summary.bad:,} bad row(s) were skipped; fix them and import the file again "
            "(rows already imported stay as they are)"
        )


def import_summary_text(name: str, summary: ImportSummary, dry_run: bool) -> str:
    would = "would be " if dry_run else ""
    lines = [
        f"{name}{' (dry run, nothing written)' if dry_run else ''}: {summary.rows:,} rows: "
        f"{summary.created:,} {would}created, {summary.updated:,} {would}updated, "
        f"{summary.unchanged:,} unchanged, {summary.bad:,} bad; "
        f"{summary.consent_events:,} consent changes {would}recorded"
    ]
    if summary.unknown_owners:
        lines.append(
            f"note: {summary.unknown_owners:,} customer(s) name an owner_id that is no contact "
            "person; they are shown the form's fallback contact"
        )
    return "\n".join(lines)


class ChangeList:
    """In a dry run, the first changes, said in words."""

    def __init__(self, dry_run: bool) -> None:
        self._dry_run = dry_run
        self._count = 0
        self.echo: Callable[[str], None] = click.echo

    def add(self, line: int, change: CustomerChange) -> None:
        if not self._dry_run or (change.status == "unchanged" and not change.consents):
            return
        self._count += 1
        if self._count > SHOWN:
            return
        what = {"created": "would be created", "updated": "would be updated"}.get(
            change.status, "is unchanged"
        )
        fields = f" ({', '.join(change.fields)})" if change.fields else ""
        consents = "; ".join(f"{e.purpose} {e.action.value}" for e in change.consents)
        consent_text = f"; consent: {consents}" if consents else ""
        self.echo(f"line {line} ({change.customer_id}): {what}{fields}{consent_text}")

    def close(self) -> None:
        if self._count > SHOWN:
            click.echo(f"... and {self._count - SHOWN:,} more change(s)")
