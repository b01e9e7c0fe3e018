"""Who a customer is shown as their contact person: pure rules, no I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from prefill.models import ContactPerson, Customer, Form

MAX_DEPUTY_HOPS = 5
"""Deputy chains are followed this far, so a cycle in the data cannot loop forever."""


def contact_for(
    customer: Customer, form: Form | None, contacts: Mapping[str, ContactPerson]
) -> ContactPerson | None:
    """The customer's own owner if still active, else the owner's (active) deputy, else the
    form's fallback team; None when none of them exists."""
    person_id = customer.owner_id
    for _ in range(MAX_DEPUTY_HOPS):
        person = contacts.get(person_id) if person_id else None
        if person is None:
            break
        if person.active:
            return person
        person_id = person.deputy_id
    fallback_id = form.fallback_contact_id if form else None
    fallback = contacts.get(fallback_id) if fallback_id else None
    return fallback if fallback is not None and fallback.active else None


class Owners:
    """A CRM's owner cell as a contact person's id: the cell may hold the id, the email or the
    name (case and spacing ignored). A name two contact persons share is not guessed."""

    def __init__(self, contacts: Iterable[ContactPerson] = ()) -> None:
        self._ids: set[str] = set()
        self._emails: dict[str, str] = {}
        self._names: dict[str, list[str]] = {}
        for contact in contacts:
            self._ids.add(contact.id)
            self._emails[contact.email.lower()] = contact.id
            self._names.setdefault(_name_key(contact.name), []).append(contact.id)

    def resolve(self, cell: str) -> str | OwnerUnresolved:
        if cell in self._ids:
            return cell
        if (by_email := self._emails.get(cell.strip().lower())) is not None:
            return by_email
        named = self._names.get(_name_key(cell), [])
        if len(named) == 1:
            return named[0]
        return OwnerUnresolved.SHARED_NAME if named else OwnerUnresolved.UNKNOWN


class OwnerUnresolved(enum.StrEnum):
    UNKNOWN = "no contact person has this id, email or name"
    SHARED_NAME = "contact persons share this name: give the owner's email or contact id"


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())
