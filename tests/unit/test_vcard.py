from __future__ import annotations

import base64

import vobject

from prefill.models import ContactPerson
from prefill.vcard import LINE_LIMIT, escape, fold, to_vcard

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
    assert text.endswith("END:VCARD\r\n")
    for line in text.split("\r\n"):
        assert len(line.encode()) <= LINE_LIMIT


def test_folding_never_splits_a_multibyte_character() -> None:
    folded = fold("TITLE:" + "ö" * 80)
    for piece in folded.split("\r\n"):
        piece.encode().decode()  # would raise on a split character
    assert folded.replace("\r\n ", "") == "TITLE:" + "ö" * 80


def test_escaping() -> None:
    assert escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"


def test_photo_is_omitted_without_bytes() -> None:
    text = to_vcard(PERSON, title="", organization="Kaamos Oy")
    assert "PHOTO" not in text
    assert "TITLE" not in text
    assert base64.b64encode(JPEG).decode()[:20] not in text


HOSTILE = [
    "+358401111111\rTEL:+15550003",
    "Anna\nEMAIL:evil@x.example",
    "Anna\r\nX-INJECTED:1",
    "Berg; Anna, \\ Dr.",
    "Åsa Öberg",
]


def test_hostile_values_cannot_add_a_property() -> None:
    # Stored text refuses control characters (prefill.text); the vCard escapes them all the same.
    for value in HOSTILE:
        person = ContactPerson(
            id="x", name=value, title={"en": value}, email="anna@kaamos.example", phone=value
        )
        card = vobject.readOne(to_vcard(person, title=value, organization=value))
        names = sorted(child.name for child in card.getChildren())
        assert names == ["EMAIL", "FN", "N", "ORG", "TEL", "TITLE", "VERSION"], value
        assert card.email.value == "anna@kaamos.example"
        assert card.fn.value == value.replace("\r\n", "\n").replace("\r", "\n")
        assert card.tel.value == value.replace("\r\n", "\n").replace("\r", "\n")
