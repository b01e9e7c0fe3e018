"""What a bulk command could not do, line by line: on standard error and in a CSV report.

Shared by `prefill import customers` (cli_bulk.py) and `prefill mint` (cli_mint.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import click

from prefill.csv_safe import SafeWriter

SHOWN = 20
"""Problems and changes listed on the terminal; the report file has them all."""


class LineReport:
    """Lines that could not be done: the first few on standard error (line and reason: the
    terminal, or a cron job's log, gets no id), all of them in a CSV file with the row's id,
    created when there is something to put in it. A report left by an earlier run at the same
    path is replaced, or removed by a run that read its input to the end without a bad line, so
    what is there always describes the last run that did something."""

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

    def close(self, *, finished: bool) -> None:
        """`finished`: the run read its input to the end. One that did nothing (Redis out of
        reach, a header refused) or stopped part-way says nothing of the earlier run's lines."""
        if self._file is not None:
            self._file.close()
        elif finished and self.path is not None and self.path.exists():
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
