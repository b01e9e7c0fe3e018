"""The options of `prefill import customers` that read a CRM's export as it comes: a preset or
a column mapping, the consent a whole file states, and the file's encoding and delimiter."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from typing import TypeVar

import click

from prefill.crm_columns import PRESETS, ColumnMap, column_map, parse_columns
from prefill.csv_dialect import UTF8, Dialect
from prefill.customer_import import ExportFormat
from prefill.models import ConsentAction
from prefill.purposes import consent_purposes

F = TypeVar("F", bound=Callable[..., object])


def crm_export_options(command: F) -> F:
    """--preset, --columns, --consent, --encoding and --delimiter."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


_OPTIONS = [
    click.option(
        "--preset",
        type=click.Choice(sorted(PRESETS)),
        default=None,
        help="Read the columns of this tool's standard contact export (see README).",
    ),
    click.option(
        "--columns",
        "columns_given",
        default="",
        metavar="'Their header=field,…'",
        help="Map the export's own headers to fields (id, email, first_name, last_name, phone, "
        "company, job_title, locale, owner, owner_id, consent_<purpose>, attr_<name>; - leaves a "
        "column out); adjusts a --preset.",
    ),
    click.option(
        "--consent",
        "consents_stated",
        multiple=True,
        metavar="PURPOSE=granted|withdrawn",
        help="Every row of the file states this consent (e.g. a Mailchimp export of subscribed "
        "members); needs --notice-version for the purpose.",
    ),
    click.option(
        "--encoding",
        default=None,
        help="The file's encoding (default: UTF-8, or Windows-1252 with a warning when the start "
        "of the file is not UTF-8).",
    ),
    click.option(
        "--delimiter",
        default=None,
        help="The character between values (default: the one that splits the header line best "
        "among , ; tab |); 'tab' for a tab.",
    ),
]


def parse_stated_consents(
    given: tuple[str, ...], versions: Mapping[str, str]
) -> dict[str, ConsentAction]:
    stated: dict[str, ConsentAction] = {}
    for item in given:
        purpose, _, action = item.partition("=")
        if purpose not in consent_purposes():
            raise click.BadParameter(
                f"{purpose!r} is not a consent purpose ({', '.join(consent_purposes())})",
                param_hint="--consent",
            )
        try:
            stated[purpose] = ConsentAction(action)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: expected PURPOSE=granted or PURPOSE=withdrawn", param_hint="--consent"
            ) from None
        if purpose not in versions:
            raise click.BadParameter(
                f"say which consent notice the customers agreed to, with --notice-version "
                f"{purpose}=VERSION",
                param_hint="--consent",
            )
    return stated


def parse_column_options(
    preset: str | None, columns: str, export_format: ExportFormat
) -> ColumnMap | None:
    try:
        mapping = column_map(preset, parse_columns(columns))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--columns") from exc
    if mapping is not None and export_format is not ExportFormat.CSV:
        raise click.UsageError("--preset and --columns read CSV exports; NDJSON keys are ours")
    return mapping


def parse_dialect_options(
    encoding: str | None, delimiter: str | None
) -> tuple[str | None, str | None]:
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise click.BadParameter(
                f"{encoding!r} is not an encoding (e.g. utf-8, cp1252, latin-1)",
                param_hint="--encoding",
            ) from None
        encoding = UTF8 if encoding == "utf-8" else encoding  # a byte-order mark is dropped
    if delimiter is not None:
        delimiter = "\t" if delimiter.lower() in {"tab", "\\t"} else delimiter
        if len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum():
            raise click.BadParameter(
                f"{delimiter!r}: give one character such as ; or , or 'tab'",
                param_hint="--delimiter",
            )
    return encoding, delimiter


def say_dialect(name: str, dialect: Dialect, export_format: ExportFormat) -> None:
    """Tells the operator what was guessed, so that a wrong guess is seen before the rows."""
    if dialect.guessed:
        click.echo(
            f"{name}: the start of the file is not UTF-8; reading it as Windows-1252, as Excel "
            "saves a CSV (give --encoding if that is wrong)",
            err=True,
        )
    if export_format is ExportFormat.CSV and dialect.delimiter != ",":
        shown = "tab" if dialect.delimiter == "\t" else repr(dialect.delimiter)
        click.echo(f"{name}: values are separated by {shown}", err=True)
