"""`prefill mint`: a campaign's personal links for a CRM's volumes, as a CSV for the email tool.

It streams: customers go through in batches, progress goes to standard error, and who was
skipped is listed with the reason (cli_reports.py). Imported on its own by the CLI, so that a
mint does not load what an import or the web service needs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TextIO

import click

from prefill.cli_reports import UNREADABLE_INPUT, LineReport, unreadable
from prefill.cli_support import (
    ExistingPath,
    cli_actor,
    collector_for_bulk,
    data_dir_option,
    load_settings,
    run_with_repository,
)
from prefill.csv_safe import SafeWriter
from prefill.import_rows import Problem, batches, open_export
from prefill.links import LinkBuilder
from prefill.minting import (
    MINT_BATCH,
    Minter,
    MintError,
    MintReport,
    Wanted,
    consenting_segment,
    mint_columns,
    output_rows,
    require_active_campaign,
    wanted_from_csv,
)
from prefill.progress import Progress
from prefill.purposes import EMAIL_MARKETING, consent_purposes
from prefill.store import Repository
from prefill.tokens import LinkSigner


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
            batched = batches(wanted, MINT_BATCH)
            return await _mint_to(target, columns, batched, minter, skipped, progress)

    finished = False
    try:
        with collector_for_bulk():
            report = run_with_repository(settings, action)
        finished = True
    except MintError as exc:
        raise click.ClickException(str(exc)) from exc
    except UNREADABLE_INPUT as exc:
        raise unreadable(label, exc, "the links before it are written") from exc
    finally:
        skipped.close(finished=finished)
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
    batched: AsyncIterator[list[Wanted | Problem]],
    minter: Minter,
    skipped: LineReport,
    progress: Progress,
) -> MintReport:
    # Columns the input has but a row lacks stay empty; merge fields the input lacks are added.
    writer = SafeWriter(target)
    writer.writerow(mint_columns(columns))
    row_of = output_rows(columns)
    # Written a batch at a time: one large write instead of one per row.
    rows: list[list[str]] = []

    def batch_done(done: int, _: MintReport) -> None:
        writer.writerows(rows)
        rows.clear()
        progress.update(done)

    report = await minter.mint_batches(
        batched,
        write=lambda w, customer, links: rows.append(row_of(w, customer, links)),
        on_skip=skipped.add,
        on_batch=batch_done,
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
