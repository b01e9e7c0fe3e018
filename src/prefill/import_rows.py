"""Reading import files row by row: CSV and NDJSON, with each bad row's line number and reason.

Rows are yielded one at a time, so a file of any size is read in constant memory. What is wrong
with a row is said as `field: reason` in words, never by echoing the value (it may be personal).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO, TextIO, TypeVar, cast

import msgspec

from prefill.csv_dialect import BLOCK_BYTES, UTF8, Dialect, Replayed, detect
from prefill.models import ATTRIBUTE_PATTERN, EMAIL_PATTERN, ID_PATTERN, ORIGIN_PATTERN
from prefill.text import MULTILINE_TEXT_PATTERN, PLAIN_TEXT_PATTERN

T = TypeVar("T")
Row = dict[str, str]
"""Column (or NDJSON key) -> the cell's text, stripped."""


class Problem(msgspec.Struct, frozen=True):
    line: int | None
    """1-based line of the row in its file; None for a problem between files."""
    reason: str
    key: str = ""
    """The row's id, if it has one: what the person fixing the file looks for."""

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"


class ImportRejected(Exception):
    """The file cannot be imported at all (or, for an all-or-nothing import, has bad rows);
    nothing from it was imported."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s); nothing was imported")
        self.source = source
        self.problems = problems


PATTERN_MEANINGS = {
    ID_PATTERN: "use only letters, digits, '_', '.' and '-', at most 64 characters",
    EMAIL_PATTERN: "not a valid email address",
    ORIGIN_PATTERN: "must be scheme://host[:port], e.g. https://www.example.com",
    ATTRIBUTE_PATTERN: "must be email, first_name, last_name, phone, company, job_title or "
    "attributes.<key>",
    PLAIN_TEXT_PATTERN: "must not contain control characters (line breaks, tabs, ...)",
    MULTILINE_TEXT_PATTERN: "must not contain control characters other than line breaks",
}


def describe(error: msgspec.ValidationError) -> str:
    """msgspec's message as `field: reason`, with regular expressions said in words."""
    message, _, path = str(error).partition(" - at `$")
    field = path.rstrip("`").lstrip(".")
    for pattern, meaning in PATTERN_MEANINGS.items():
        if repr(pattern) in message:  # msgspec quotes the pattern with repr()
            message = meaning
    return f"{field}: {message}" if field else message


def convert(
    line: int, data: Mapping[str, Any], kind: type[T], *, text_only: bool = False
) -> T | Problem:
    """`data` as a `kind`, or its problem. CSV cells are text, so "45" is taken for 45, unless
    the caller knows every field it gives is text (`text_only`): then the stricter, cheaper
    conversion, which gives the same result (10 -> 6.5 µs for a customer)."""
    try:
        return msgspec.convert(data, kind, strict=text_only)
    except msgspec.ValidationError as exc:
        return Problem(line, describe(exc))


# Bytes that the encoding cannot decode, kept by the "surrogateescape" error handler so that one
# bad row does not stop the file.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ID = re.compile(ID_PATTERN)
NOT_DECODED = "not valid in the file's encoding: save the export as UTF-8, or give --encoding"


@contextlib.contextmanager
def open_export(path: str) -> Iterator[tuple[TextIO, Callable[[], float | None]]]:
    """An export file (`-` for standard input; `.gz` is decompressed) as UTF-8 text, and how
    much of it has been read (None when the size is unknown). A spreadsheet's byte-order mark
    is dropped; bytes that are not UTF-8 are kept as escapes, so the readers below can report
    their row instead of the file ending there."""
    with _open_binary(path) as (binary, fraction), _text(binary, UTF8) as text:
        yield text, fraction


WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
"""How an .xlsx (a zip) and an .xls (an OLE file) begin: HubSpot, for one, exports these."""
WORKBOOK = "a spreadsheet workbook, not a CSV: export or save it as CSV (CSV UTF-8 in Excel)"


@contextlib.contextmanager
def open_detected(
    path: str, encoding: str | None = None, delimiter: str | None = None
) -> Iterator[tuple[TextIO, Callable[[], float | None], Dialect]]:
    """As `open_export`, in the encoding detected from the first block (or the one given), with
    the delimiter of its header line (or the one given)."""
    with _open_binary(path) as (binary, fraction):
        head = binary.read(BLOCK_BYTES)
        if head.startswith(WORKBOOK_SIGNATURES):
            source = "stdin" if path == "-" else os.path.basename(path)
            raise ImportRejected(source, [Problem(None, WORKBOOK)])
        dialect = detect(head, encoding, delimiter)
        replayed = io.BufferedReader(Replayed(head, binary), BLOCK_BYTES)
        with _text(replayed, dialect.encoding) as text:
            yield text, fraction, dialect


@contextlib.contextmanager
def _open_binary(path: str) -> Iterator[tuple[BinaryIO, Callable[[], float | None]]]:
    if path == "-":
        yield sys.stdin.buffer, lambda: None
        return
    with open(path, "rb") as raw:  # The position in the raw file is the progress.
        size = os.fstat(raw.fileno()).st_size
        fraction = (lambda: raw.tell() / size) if size else (lambda: None)
        if not path.endswith(".gz"):
            yield raw, fraction
            return
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield cast("BinaryIO", unzipped), fraction


@contextlib.contextmanager
def _text(binary: BinaryIO, encoding: str) -> Iterator[TextIO]:
    text = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
    try:
        yield text
    finally:
        text.detach()  # The binary stream is closed by whoever opened it (standard input stays).


class HeaderProblem(Exception):
    """A header that cannot be read as the columns the import needs (said in the message)."""


def csv_rows(
    stream: Iterable[str],
    required: set[str],
    source: str,
    check_header: Callable[[list[str]], str | None] = lambda _: None,
    key_column: str = "id",
    *,
    delimiter: str = ",",
    rename: Callable[[list[str]], list[str]] | None = None,
    short_rows: bool = False,
) -> Iterator[tuple[int, Row | Problem]]:
    """(line where the row starts, row or its problem). The header must hold the required
    columns and pass `check_header`, else ImportRejected: every row would be wrong. A problem
    names its row by the `key_column` cell, when that is an id. `rename` gives our name for each
    of the file's columns ("" for one to leave out), or raises HeaderProblem. A row with fewer
    values than columns is a problem (a row cut short) unless `short_rows`: then its missing
    cells are absent."""
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader, [])]
        header = rename(header) if rename is not None else header
    except csv.Error as exc:
        raise ImportRejected(source, [Problem(1, f"not a CSV header: {exc}")]) from exc
    except HeaderProblem as exc:
        raise ImportRejected(source, [Problem(1, str(exc))]) from exc
    kept = [name for name in header if name]
    missing = required - set(kept)
    repeated = sorted({name for name in kept if kept.count(name) > 1})
    wrong = (
        f"missing column(s): {', '.join(sorted(missing))}"
        if missing
        else f"column(s) named twice: {', '.join(repeated)}"
        if repeated
        else check_header(kept)
    )
    if wrong:
        raise ImportRejected(source, [Problem(1, wrong)])
    key_at = header.index(key_column) if key_column in header else None
    every_column_kept = all(header)
    end = reader.line_num
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield start, Problem(start, f"not a valid CSV row: {exc}")
            continue
        end = reader.line_num
        if not cells:
            continue  # a blank line
        if end > start and not _breaks_only_where_left_out(header, cells):
            # No value of ours holds a line break: an unclosed quote ran on into the rows after.
            reason = f"lines {start}-{end} read as one row: is a quote left open on line {start}?"
            yield start, Problem(start, reason, _key(cells, key_at))
        elif len(cells) > len(header):
            yield start, Problem(start, "more values than columns", _key(cells, key_at))
        elif len(cells) < len(header) and not short_rows:
            values = f"{len(cells)} value{'s' if len(cells) > 1 else ''}"
            reason = f"{values} for {len(header)} columns: is the row cut short?"
            yield start, Problem(start, reason, _key(cells, key_at))
        elif _UNDECODABLE.search("".join(cells)) and any(
            name and _UNDECODABLE.search(cell) for name, cell in zip(header, cells, strict=False)
        ):  # (bytes in a column the import leaves out do not matter)
            yield start, Problem(start, NOT_DECODED, _key(cells, key_at))
        elif every_column_kept:
            yield start, {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
        else:
            row = zip(header, cells, strict=False)
            yield start, {name: cell.strip() for name, cell in row if name}


def _breaks_only_where_left_out(header: list[str], cells: list[str]) -> bool:
    """A row over several lines is whole when its line breaks are all in columns the import
    leaves out (a CRM's notes): it has every column, and none of ours holds a break."""
    return len(cells) == len(header) and not any(
        name and ("\n" in cell or "\r" in cell) for name, cell in zip(header, cells, strict=True)
    )


def _key(cells: list[str], at: int | None) -> str:
    """A bad row's id cell, if it holds an id (anything else may be personal)."""
    key = cells[at].strip() if at is not None and at < len(cells) else ""
    return key if _ID.fullmatch(key) else ""


def ndjson_rows(stream: Iterable[str]) -> Iterator[tuple[int, Row | Problem]]:
    """One JSON object per line; numbers and booleans become text, null an empty cell. A nested
    object under a key (e.g. `attributes`) becomes `key.<name>` cells."""
    for line, text in enumerate(stream, 1):
        if not text.strip():
            continue
        if _UNDECODABLE.search(text):
            yield line, Problem(line, NOT_DECODED)
            continue
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            yield line, Problem(line, f"not valid JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield line, Problem(line, "expected a JSON object")
            continue
        yield line, _flatten(line, value)


def _flatten(line: int, value: dict[str, Any]) -> Row | Problem:
    row: Row = {}
    for key, item in value.items():
        if isinstance(item, dict):
            for name, inner in item.items():
                cell = _cell(inner)
                if cell is None:
                    return Problem(line, f"{key}.{name}: expected text, a number or null")
                row[f"{key}.{name}"] = cell
            continue
        cell = _cell(item)
        if cell is None:
            return Problem(line, f"{key}: expected text, a number or null")
        row[key] = cell
    return row


def _cell(value: object) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value).strip()
    return None


async def batches(items: AsyncIterator[T] | Iterable[T], size: int) -> AsyncIterator[list[T]]:
    """Lists of `size` items (the last one shorter), from an iterable or an async iterator."""
    source = items if isinstance(items, AsyncIterator) else _each(items)
    batch: list[T] = []
    async for item in source:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _each(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def end_in_flight(
    batches_in_flight: Iterable[asyncio.Future[Any]], failure: BaseException
) -> None:
    """After `failure`, the batches still in flight of a bulk run: on an error each ends
    (reporting what it wrote) before the error is said, so that none is left to write after
    the run has ended; on a cancellation (shutdown) each is cancelled."""
    if isinstance(failure, Exception):
        await asyncio.gather(*batches_in_flight, return_exceptions=True)
    else:
        for batch in batches_in_flight:
            batch.cancel()
