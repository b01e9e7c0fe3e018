"""A contact person as a vCard 3.0 (RFC 2426), the version every phone's address book imports.

vobject writes it: it escapes every value by the RFC (a backslash, comma, semicolon and every
kind of line break), so no stored text can add a property or end the card.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import vobject

from prefill.models import ContactPerson

CACHED_CARDS = 512
"""vobject takes a few tenths of a millisecond per card, and every card page draws one (its QR
code); a card changes only with the catalog, so cards without a photo are kept by content. A
card with its photo (up to 512 KB) is written anew for each download: kept, a few hundred of
them would hold a few hundred megabytes."""


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
    """The vCard text, CRLF line endings, ready to serve as `text/vcard`. Lines are folded at 75
    octets, except the photo's: vobject leaves it whole, as Apple's address books need."""
    card = Card(person.name, person.kind, person.email, person.phone, title, organization)
    return _serialized(card, photo_jpeg) if photo_jpeg else _without_photo(card)


class Card(NamedTuple):
    """Everything a vCard says but the photo (the cache's key)."""

    name: str
    kind: str
    email: str
    phone: str
    title: str
    organization: str


@functools.lru_cache(maxsize=CACHED_CARDS)
def _without_photo(person: Card) -> str:
    return _serialized(person, None)


def _serialized(person: Card, photo_jpeg: bytes | None) -> str:
    family, given = split_name(person.name) if person.kind == "person" else ("", "")
    card = vobject.vCard()
    card.add("n").value = vobject.vcard.Name(family=family, given=given)
    card.add("fn").value = person.name
    card.add("org").value = [person.organization or person.name]
    if person.kind == "team":
        # Address books then file the card under the team's name, not as a person "Team".
        card.add("x-abshowas").value = "COMPANY"
    if person.title:
        card.add("title").value = person.title
    email = card.add("email")
    email.value = person.email
    email.type_param = ["INTERNET", "WORK"]
    if person.phone:
        phone = card.add("tel")
        phone.value = person.phone
        phone.type_param = ["WORK", "VOICE"]
    if photo_jpeg:
        photo = card.add("photo")
        photo.value = photo_jpeg
        photo.encoding_param = "b"
        photo.type_param = "JPEG"
    text: str = card.serialize()
    return text
