from __future__ import annotations

import base64

import vobject

from prefill.models import ContactPerson
from prefill.vcard import to_vcard

LINE_LIMIT = 75
"""RFC 2426 folds content lines longer than 75 octets."""

PERSON = ContactPerson(
    id="johan",
    name="Johan Lindqvist",
    title={"sv": "Kundansvarig"},
    email="johan.lindqvist@kaamos.example",
    phone="+358501234568",
    has_photo=True,
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20


def test_a_standard_parser_reads_every_property() -> None:
    text = to_vcard(
        PERSON, title="Kundansvarig, Österbotten; Vasa", organization="Kaamos Oy", photo_jpeg=JPEG
    )
    card = vobject.readOne(text)
    assert card.fn.value == "Johan Lindqvist"
    assert card.n.value.family == "Lindqvist"
    assert card.n.value.given == "Johan"
    assert card.title.value == "Kundansvarig, Österbotten; Vasa"
    assert card.email.value == "johan.lindqvist@kaamos.example"
    assert card.tel.value == "+358501234568"
    assert card.photo.value == JPEG


def test_lines_are_folded_to_75_octets_with_crlf() -> None:
    text = to_vcard(PERSON, title="Ä" * 100, organization="Kaamos Oy", photo_jpeg=JPEG)
    assert text.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert text.endswith("END:VCARD\r\n")
    lines = text.split("\r\n")
    # The photo stays on one line: Apple's address books want its base64 unwrapped.
    assert [line for line in lines if line.startswith("PHOTO")] == [
        "PHOTO;ENCODING=b;TYPE=JPEG:" + base64.b64encode(JPEG).decode()
    ]
    for line in lines:
        if not line.startswith("PHOTO"):
            assert len(line.encode()) <= LINE_LIMIT
            line.encode().decode()  # a folded line never splits a multi-byte character
    assert vobject.readOne(text).title.value == "Ä" * 100


def test_text_values_are_escaped_by_the_rfc() -> None:
    text = to_vcard(PERSON, title="a,b;c\\d\ne", organization="Kaamos; Oy")
    assert "TITLE:a\\,b\\;c\\\\d\\ne\r\n" in text
    assert "ORG:Kaamos\\; Oy\r\n" in text


def test_photo_is_omitted_without_bytes() -> None:
    text = to_vcard(PERSON, title="", organization="Kaamos Oy")
    assert "PHOTO" not in text
    assert "TITLE" not in text
    assert base64.b64encode(JPEG).decode()[:20] not in text


HOSTILE = [
    "+358401111111\rTEL:+15550003",
    "Anna\nEMAIL:evil@x.example",
    "Anna\r\nX-INJECTED:1",
    "Anna\r\n\r\nEND:VCARD\r\nBEGIN:VCARD\r\nTEL:+15550004",
    "Berg; Anna, \\ Dr.",
    "TEL;TYPE=WORK:+15550005",
    "a:b:c;;;,,,",
    "Åsa Öberg \u2028 Ĳ 😀",
]


def test_hostile_values_cannot_add_a_property() -> None:
    # Stored text refuses control characters (prefill.text); the vCard escapes them all the same.
    for value in HOSTILE:
        person = ContactPerson(
            id="x", name=value, title={"en": value}, email="anna@kaamos.example", phone=value
        )
        text = to_vcard(person, title=value, organization=value)
        cards = list(vobject.readComponents(text))
        assert len(cards) == 1, value
        card = cards[0]
        names = sorted(child.name for child in card.getChildren())
        assert names == ["EMAIL", "FN", "N", "ORG", "TEL", "TITLE", "VERSION"], value
        assert len(card.contents["tel"]) == len(card.contents["email"]) == 1
        assert card.email.value == "anna@kaamos.example"
        assert card.fn.value == card.tel.value == card.title.value == _as_read(value)
        assert card.org.value == [_as_read(value)]


def _as_read(value: str) -> str:
    """What a parser gives back: every kind of line break is a vCard newline."""
    return value.replace("\r\n", "\n").replace("\r", "\n")
