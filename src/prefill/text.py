"""What stored text may hold: no control characters, which would carry structure into the vCards,
CSV files and headers the service writes (a lone CR starts a new vCard property)."""

from __future__ import annotations

import re

CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029"
"""C0, DEL, C1, and the Unicode line and paragraph separators."""

PLAIN_TEXT_PATTERN = f"^[^{CONTROL}]*$"
"""One-line text: no control character at all (msgspec validates stored fields against it)."""

MULTILINE_TEXT_PATTERN = f"^(?:[^{CONTROL}]|\r?\n)*$"
"""Text from a textarea (a free attribute may hold one): line breaks, no other control."""

_CONTROL = re.compile(f"[{CONTROL}]")


def has_control(value: str, *, multiline: bool = False) -> bool:
    """True if `value` holds a control character; `multiline` text may hold newlines (LF, and
    CRLF as browsers send a textarea's line breaks)."""
    if multiline:
        value = value.replace("\r\n", "").replace("\n", "")
    return _CONTROL.search(value) is not None
