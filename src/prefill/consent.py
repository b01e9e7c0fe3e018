"""The GDPR policy, without I/O: current consent from history, and what a form may disclose."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import msgspec

from prefill.models import (
    PREFILLABLE_ATTRIBUTES,
    ConsentAction,
    ConsentEvent,
    Customer,
    Form,
    FormField,
)
from prefill.tokens import RefusalCause

MASK = "•••"


def current_consent(history: Iterable[ConsentEvent]) -> dict[str, ConsentEvent]:
    """The state a history leads to: per purpose, the event recorded last.

    Recording order, not the `at` timestamps, decides: instances' clocks may disagree, the log
    order is the one Redis gave the writes. The repository keeps this state next to the log,
    written in the same transaction as each event.
    """
    return {event.purpose: event for event in history}


def import_may_record(existing: ConsentEvent | None, imported: ConsentAction) -> bool:
    """Whether a bulk import may record `imported` over the current state.

    An import repeats what a CRM export says, which can be older than the customer's own choice:
    it may record a first answer or a withdrawal, but never turn a withdrawal back into a grant
    (only the customer can, through a form). Repeating the current state records nothing.
    """
    if existing is None:
        return True
    if existing.action is imported:
        return False
    return imported is ConsentAction.WITHDRAWN


def consent_refusal(consents: Mapping[str, ConsentEvent], purpose: str) -> RefusalCause | None:
    """None if `purpose` is granted now; otherwise why not. No recorded grant means no."""
    event = consents.get(purpose)
    if event is None:
        return RefusalCause.CONSENT_MISSING
    if event.action is not ConsentAction.GRANTED:
        return RefusalCause.CONSENT_WITHDRAWN
    return None


class ConsentShown(msgspec.Struct, frozen=True):
    """A consent's current state as its customer sees it on their own page: nothing more."""

    granted: bool
    at: float
    """When the customer gave it, or withdrew it."""


def consent_states(form: Form, consents: Mapping[str, ConsentEvent]) -> dict[str, ConsentShown]:
    """The current state of each consent the form asks for, where one is recorded.

    A granted one is shown as in force, with no box: a box ticked in advance would record
    nothing the person did now, and an empty one must not read as "withdraw". Personal data:
    for the customer's own admitted page only."""
    asked = {notice.purpose for notice in form.consents}
    return {
        purpose: ConsentShown(granted=event.action is ConsentAction.GRANTED, at=event.at)
        for purpose, event in consents.items()
        if purpose in asked
    }


def disclosable_values(form: Form, customer: Customer) -> dict[str, str]:
    """The values the form may show this customer: only prefillable fields, masked as declared.

    Consent must already have been checked; empty values are left out.
    """
    known = _PREFILLED.get(id(form))
    prefilled = known[1] if known is not None and known[0] is form else _prefilled(form)
    values: dict[str, str] = {}
    for name, column, key, options, masked in prefilled:
        # What `customer.attribute(field.prefill_from)` gives, without its tests per field.
        if key is None:
            value = getattr(customer, column)
            if not isinstance(value, str):
                value = ""
        else:
            value = customer.attributes.get(key, "")
        if options is not None and value not in options:
            continue  # A stale attribute must not select an option the form does not offer.
        if value:
            values[name] = value if masked is None else mask_value(masked, value)
    return values


_Prefilled = tuple[str, str, str | None, frozenset[str] | None, FormField | None]
"""A field that may be prefilled: its name, the customer's column or (`attributes.<key>`)
None and the key, a select's options, and the field again if it is shown masked."""
_PREFILLED: dict[int, tuple[Form, list[_Prefilled]]] = {}
"""Per form (by identity: a catalog's forms live as long as it is current), its prefilled
fields; the form's structure only, nothing of a customer's."""


def _prefilled(form: Form) -> list[_Prefilled]:
    """The fields `form` may prefill, in its order, each with where its value comes from."""
    fields: list[_Prefilled] = []
    for field in form.fields:
        source = field.prefill_from
        if not field.prefill or source is None:
            continue
        if source.startswith("attributes."):
            column, key = "", source.removeprefix("attributes.")
        elif source in PREFILLABLE_ATTRIBUTES:
            column, key = source, None
        else:
            continue  # No value: `Customer.attribute` gives "", never disclosed.
        options = frozenset(o.value for o in field.options) if field.type == "select" else None
        fields.append((field.name, column, key, options, field if field.masked else None))
    if len(_PREFILLED) >= 64:
        _PREFILLED.clear()  # Catalogs replaced many times over: keep only the current ones.
    _PREFILLED[id(form)] = (form, fields)
    return fields


def greeting_name(form: Form, disclosed: Mapping[str, str]) -> str:
    """The first name to greet with ("Not Matti?"), only if the form itself shows it in full."""
    for field in form.fields:
        if field.prefill_from == "first_name" and not field.masked and field.name in disclosed:
            return disclosed[field.name]
    return ""


def mask_value(field: FormField, value: str) -> str:
    """Enough to recognise one's own data, too little to learn someone else's."""
    if field.type == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}{MASK}@{domain}"
    if field.type == "tel":
        return f"{value[:4]}{MASK}{value[-2:]}" if len(value) > 6 else MASK
    return f"{value[:1]}{MASK}"


def truncate_ip(address: str) -> str:
    """An IPv4 address to its /24, an IPv6 address to its /48; "" for anything else."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
