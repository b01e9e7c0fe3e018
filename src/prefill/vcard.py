"""A contact person as a vCard 3.0 (RFC 2426), the version every phone's address book imports."""

from __future__ import annotations

import base64

from prefill.models import ContactPerson

LINE_LIMIT = 75
"""RFC 2426 folds content lines longer than 75 octets."""


def escape(value: str) -> str:
    """Escape a text value: backslash, comma, semicolon and line breaks are special in vCard.
    A lone CR counts as a line break too: parsers start a new property on it."""
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\r", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """Split a content line into 75-octet pieces joined by CRLF + space, never inside a
    multi-byte UTF-8 character."""
    pieces: list[str] = []
    current = ""
    current_size = 0
    for char in line:
        size = len(char.encode())
        limit = LINE_LIMIT if not pieces else LINE_LIMIT - 1  # continuation lines start with " "
        if current_size + size > limit:
            pieces.append(current)
            current, current_size = "", 0
        current += char
        current_size += size
    pieces.append(current)
    return "\r\n ".join(pieces)


def split_name(full_name: str) -> tuple[str, str]:
    """(family, given) for the N property; a one-word name is taken as the given name."""
    given, _, family = full_name.strip().rpartition(" ")
    return (family, given) if given else ("", family)


def to_vcard(
    person: ContactPerson,
    *,
    title: str,
    organization: str,
    photo_jpeg: bytes | None = None,
) -> str:
    """The vCard text, CRLF line endings, ready to serve as `text/vcard`."""
    family, given = split_name(person.name) if person.kind == "person" else ("", "")
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"N:{escape(family)};{escape(given)};;;",
        f"FN:{escape(person.name)}",
        f"ORG:{escape(organization or person.name)}",
    ]
    if person.kind == "team":
        # Address books then file the card under the team's name, not as a person "Team".
        lines.append("X-ABShowAs:COMPANY")
    if title:
        lines.append(f"TITLE:{escape(title)}")
    lines.append(f"EMAIL;TYPE=INTERNET,WORK:{escape(person.email)}")
    if person.phone:
        lines.append(f"TEL;TYPE=WORK,VOICE:{escape(person.phone)}")
    if photo_jpeg:
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{base64.b64encode(photo_jpeg).decode()}")
    lines.append("END:VCARD")
    return "".join(fold(line) + "\r\n" for line in lines)
