"""The encoding and delimiter of a CSV export, told from its first block only.

A CRM export is UTF-8 (with or without the byte-order mark a spreadsheet writes), or, saved
from Excel in a Finnish or Swedish locale, Windows-1252 with semicolons. Only the first block is
looked at, so a file of any size (or standard input) still streams in constant memory; the
block is then read again as the start of the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from typing import TYPE_CHECKING, BinaryIO

import msgspec

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOCK_BYTES = 64 * 1024
UTF8 = "utf-8-sig"
"""UTF-8, dropping a leading byte-order mark."""
GUESSED = "cp1252"
"""What a first block that is not UTF-8 is taken for: Excel's "CSV" on Western Windows."""
DELIMITERS = (",", ";", "\t", "|")
"""Candidates in order of preference when a header splits equally well on several."""


class Dialect(msgspec.Struct, frozen=True):
    encoding: str
    delimiter: str
    guessed: bool = False
    """The encoding is a guess (the first block is not UTF-8): the operator is told."""


def detect(head: bytes, encoding: str | None = None, delimiter: str | None = None) -> Dialect:
    """The dialect of a file starting with `head`; a given encoding or delimiter is kept."""
    guessed = False
    if encoding is None:
        encoding = UTF8 if _is_utf8(head) else GUESSED
        guessed = encoding == GUESSED
    if delimiter is None:
        text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
        delimiter = header_delimiter(text.partition("\n")[0])
    return Dialect(encoding, delimiter, guessed)


def _is_utf8(head: bytes) -> bool:
    try:
        # Not final: the block may end inside a character, which the next block completes.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def header_delimiter(line: str) -> str:
    """The candidate that splits the header line into the most columns (quotes respected)."""
    counts = {d: len(next(csv.reader([line], delimiter=d), [])) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equals


class Replayed(io.RawIOBase):
    """A stream whose first block was already read: that block again, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            count = min(len(view), len(self._head))
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)
