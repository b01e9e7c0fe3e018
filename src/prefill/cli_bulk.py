"""`prefill import customers` and `prefill mint`: a CRM's volumes, with progress and reports.

Both stream: rows go through in batches, progress goes to standard error (a bar at a terminal,
a line every few seconds otherwise), and what could not be done is listed with its line number
and reason, on standard error and in a CSV report.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TextIO

import click
import phonenumbers

from prefill.cli_import_options import (
    crm_export_options,
    parse_column_options,
    parse_dialect_options,
    parse_stated_consents,
    say_dialect,
)
from prefill.cli_support import (
    ExistingPath,
    cli_actor,
    data_dir_option,
    load_settings,
    report_rejected,
    run_with_repository,
)
from prefill.contacts import Owners
from prefill.csv_safe import SafeDictWriter, SafeWriter
from prefill.customer_import import ExportFormat, ImportSummary, import_customers, read_customers
from prefill.import_rows import ImportRejected, Problem, open_detected, open_export
from prefill.links import LinkBuilder
from prefill.minting import (
    Minter,
    MintError,
    MintReport,
    Wanted,
    consenting_segment,
    mint_columns,
    output_row,
    require_active_campaign,
    wanted_from_csv,
)
from prefill.progress import Progress
from prefill.purposes import EMAIL_MARKETING, consent_purposes
from prefill.store import CustomerChange, Repository
from prefill.submissions import PHONE_REGION
from prefill.tokens import LinkSigner

SHOWN = 20
"""Problems and changes listed on the terminal; the report file has them all."""


class LineReport:
    """Lines that could not be done: the first few on standard error (line and reason: the
    terminal, or a cron job's log, gets no id), all of them in a CSV file with the row's id,
    created when there is something to put in it. A report left by an earlier run at the same
    path is removed, so what is there always describes the last run."""

    def __init__(self, path: Path | None, source: str, option: str, lines: bool = True) -> None:
        """`option` names the file (for "give it to list them all"); `lines`: whether the items
        have lines to show (a segment's customers have none)."""
        if path is not None and not _writable(path):
            raise click.BadParameter(f"{path}: cannot write a report there")
        self.path = path
        self.count = 0
        self._source = source
        self._option = option
        self._lines = lines
        self.echo: Callable[[str], None] = lambda message: click.echo(message, err=True)
        """Where the first few go: a Progress's `note` keeps them off its bar."""
        self._file: TextIO | None = None
        self._writer: SafeWriter | None = None

    def add(self, line: int, key: str, reason: str) -> None:
        self.count += 1
        line = line if self._lines else 0
        if line and self.count <= SHOWN:
            self.echo(f"{self._source}: line {line}: {reason}")
        if self.path is None:
            return
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = SafeWriter(self._file)
            self._writer.writerow(REPORT_COLUMNS)
        self._writer.writerow([line or "", key, reason])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path is not None and self.path.exists():
            self.path.unlink()
            click.echo(f"removed {self.path}, an earlier run's report", err=True)
        if self.count and self.path:
            click.echo(f"all {self.count:,} are listed in {self.path}", err=True)
        elif self.count > SHOWN:
            click.echo(f"... and more: {self._option} PATH lists them all", err=True)


REPORT_COLUMNS = ("line", "customer_id", "reason")


def _writable(path: Path) -> bool:
    folder = path.parent if str(path.parent) else Path()
    if path.exists():
        return path.is_file() and os.access(path, os.W_OK)
    return folder.is_dir() and os.access(folder, os.W_OK)


UNREADABLE_INPUT = (OSError, EOFError)
"""A file that cannot be read to its end: a broken or truncated .gz, a disk error. (EOFError
must not reach click, which takes it for Ctrl-D and says only "Aborted!")."""


def unreadable(name: str, exc: Exception, so_far: str) -> click.ClickException:
    what = {
        "BadGzipFile": "not a gzip file",
        "EOFError": "cut off before its end",
    }.get(type(exc).__name__, f"cannot be read ({type(exc).__name__})")
    return click.ClickException(f"{name}: {what}; {so_far}")


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
            rename = None if mapping is None else functools.partial(mapping.rename, note=note)
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

    try:
        summary = run_with_repository(settings, action)
    except ImportRejected as exc:
        raise report_rejected(exc) from exc
    except UNREADABLE_INPUT as exc:
        raise unreadable(name, exc, "the rows read before it are imported") from exc
    finally:
        errors.close()
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


@click.command()
@click.option("--campaign", "campaign_id", required=True, help="The campaign id.")
@click.option(
    "--input",
    "source",
    type=ExistingPath(dir_okay=False, allow_dash=True),
    default=None,
    help="CSV with a customer_id (or id) column, whose columns are copied through; - for "
    "standard input (the default without --all-consenting).",
)
@click.option(
    "--all-consenting",
    is_flag=True,
    help="Every customer who has consented to the purpose, instead of --input.",
)
@click.option(
    "--consent-purpose",
    type=click.Choice(consent_purposes()),
    default=EMAIL_MARKETING,
    show_default=True,
    help="The consent a customer needs to get the campaign's email.",
)
@click.option(
    "--output",
    "target",
    type=click.File("w", encoding="utf-8"),
    default="-",
    show_default=True,
    help="Where to write the CSV with URL columns; - for standard output.",
)
@click.option(
    "--skipped",
    "skipped_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also list every skipped customer in this CSV (line, customer_id, reason).",
)
@data_dir_option
def mint(
    campaign_id: str,
    source: str | None,
    all_consenting: bool,
    consent_purpose: str,
    target: TextIO,
    skipped_path: Path | None,
    data_dir: Path | None,
) -> None:
    """Personal links for a campaign, as a CSV for the email tool: customer_id, email, names,
    locale, form_url, card_url, vcard_url, unsubscribe_url, and the List-Unsubscribe and
    List-Unsubscribe-Post header values. Customers without consent to the purpose, without a
    contact person (or fallback), erased or unknown are skipped and counted by reason."""
    if all_consenting and source is not None:
        raise click.UsageError("give --input or --all-consenting, not both")
    path = None if all_consenting else source or "-"
    settings = load_settings(data_dir, signs_links=True)
    links = LinkBuilder(
        LinkSigner(settings.secret_keys, settings.max_link_age_seconds), settings.public_url
    )
    label = "segment" if path is None else "stdin" if path == "-" else Path(path).name
    skipped = LineReport(skipped_path, label, "--skipped", lines=path is not None)

    async def action(repository: Repository) -> MintReport:
        campaign = await require_active_campaign(repository, campaign_id)
        minter = Minter(
            repository, links, campaign, cli_actor().name, consent_purpose, segment=path is None
        )
        if path is None:
            progress = Progress(f"mint {campaign_id}", sys.stderr)
            skipped.echo = progress.note
            segment = consenting_segment(repository)
            return await _mint_to(target, [], segment, minter, skipped, progress)
        with open_export(path) as (text, fraction):
            columns, wanted = wanted_from_csv(text)
            progress = Progress(f"mint {campaign_id}", sys.stderr, fraction)
            skipped.echo = progress.note
            return await _mint_to(target, columns, wanted, minter, skipped, progress)

    try:
        report = run_with_repository(settings, action)
    except MintError as exc:
        raise click.ClickException(str(exc)) from exc
    except UNREADABLE_INPUT as exc:
        raise unreadable(label, exc, "the links before it are written") from exc
    finally:
        skipped.close()
    click.echo(mint_summary_text(campaign_id, report, consent_purpose), err=True)
    if not os.environ.get("PREFILL_PUBLIC_URL"):
        click.echo(
            f"note: the links point to {settings.public_url}, the default, which only this "
            "machine can open; set PREFILL_PUBLIC_URL for links to send to customers",
            err=True,
        )


async def _mint_to(
    target: TextIO,
    columns: list[str],
    wanted: AsyncIterator[Wanted | Problem] | Iterable[Wanted | Problem],
    minter: Minter,
    skipped: LineReport,
    progress: Progress,
) -> MintReport:
    # Columns the input has but a row lacks stay empty; merge fields the input lacks are added.
    writer = SafeDictWriter(target, mint_columns(columns))
    writer.writeheader()
    report = await minter.mint(
        wanted,
        write=lambda w, customer, links: writer.writerow(output_row(w, customer, links)),
        on_skip=skipped.add,
        on_batch=lambda rows, _: progress.update(rows),
    )
    progress.finish()
    return report


def mint_summary_text(campaign_id: str, report: MintReport, purpose: str) -> str:
    total = sum(report.skipped.values())
    lines = [f"minted {report.minted:,} link set(s) for {campaign_id}, skipped {total:,}"]
    lines += [
        f"  {count:,} {reason}"
        for reason, count in sorted(report.skipped.items(), key=lambda item: -item[1])
    ]
    if report.outside:
        lines.append(f"({report.outside:,} customer(s) have not consented to {purpose})")
    return "\n".join(lines)
