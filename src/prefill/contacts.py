"""Who a customer is shown as their contact person: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

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
