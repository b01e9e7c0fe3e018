"""What a submitted form means, without I/O: validation, normalisation, and the record it makes.

Messages are English msgids (translated where the page is rendered). A value shown masked that
comes back unchanged means "keep what you have": it is never written over the stored value.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

import msgspec
import phonenumbers

from prefill.consent import MASK
from prefill.i18n import N_
from prefill.models import (
    EMAIL_PATTERN,
    PREFILLABLE_ATTRIBUTES,
    SCALES,
    Customer,
    Form,
    FormField,
    Locale,
)
from prefill.phones import is_valid_e164, valid_number
from prefill.text import has_control

REQUIRED = N_("Please fill in this field.")
TOO_LONG = N_("Please shorten this to at most %(max)s characters.")
BAD_EMAIL = N_("Please enter an email address like name@example.com.")
BAD_PHONE = N_("Please enter a phone number with its area code, like +358 40 123 4567.")
BAD_OPTION = N_("Please choose one of the options.")
BAD_CHARACTERS = N_("Please remove the invisible control characters from this field.")
BAD_SCALE = N_("Please choose a number from %(low)s to %(high)s.")

_EMAIL = re.compile(EMAIL_PATTERN)
PHONE_REGION = "FI"
"""Where a number without a country code is assumed to be, whatever the page's language: the
company's customers are Finnish, Swedish speakers included. +46 or any other code is kept."""


class FieldError(msgspec.Struct, frozen=True):
    message: str
    """An English msgid."""
    values: dict[str, str] = msgspec.field(default_factory=dict)
    """Placeholders of the message, e.g. `max`."""


class Accepted(msgspec.Struct, frozen=True):
    values: dict[str, str]
    """Every field's normalised value (masked fields left unchanged are absent)."""
    consents: dict[str, str]
    """Purpose -> notice version of each consent box that was ticked."""


class Rejected(msgspec.Struct, frozen=True):
    errors: dict[str, FieldError]
    typed: dict[str, str]
    """What the person typed, to show again."""


def validate(form: Form, posted: Mapping[str, str]) -> Accepted | Rejected:
    typed = {f.name: posted.get(f.name, "").strip() for f in form.fields}
    errors: dict[str, FieldError] = {}
    values: dict[str, str] = {}
    for field in form.fields:
        value = typed[field.name]
        if field.masked and MASK in value:
            continue  # The masked display came back untouched: keep the stored value.
        problem, normalised = _check(field, value)
        if problem is not None:
            errors[field.name] = problem
        elif normalised:
            values[field.name] = normalised
    consents = {
        notice.purpose: notice.version
        for notice in form.consents
        # Only the version the page showed counts as the one agreed to.
        if posted.get(f"consent_{notice.purpose}") == notice.version
    }
    if errors:
        return Rejected(errors=errors, typed=typed)
    return Accepted(values=values, consents=consents)


def _check(field: FormField, value: str) -> tuple[FieldError | None, str]:
    if not value:
        return (FieldError(REQUIRED) if field.required else None), ""
    if has_control(value, multiline=field.type == "textarea"):
        return FieldError(BAD_CHARACTERS), ""
    limit = field.value_max_length
    if len(value) > limit:
        return FieldError(TOO_LONG, {"max": str(limit)}), ""
    if field.type == "email":
        ok = _EMAIL.match(value) is not None and len(value) <= 254
        return (None, value.lower()) if ok else (FieldError(BAD_EMAIL), "")
    if field.type == "tel":
        phone = normalise_phone(value, PHONE_REGION)
        return (None, phone) if phone else (FieldError(BAD_PHONE), "")
    if field.type == "select" and value not in {o.value for o in field.options}:
        return FieldError(BAD_OPTION), ""
    if field.type in SCALES:
        return _check_scale(*SCALES[field.type], value)
    return None, value


def _check_scale(low: int, high: int, value: str) -> tuple[FieldError | None, str]:
    """A rating or NPS answer: a whole number on its scale (ASCII digits only: int() would
    also take other scripts' digits)."""
    if value.isascii() and value.isdigit() and low <= int(value) <= high:
        return None, str(int(value))
    return FieldError(BAD_SCALE, {"low": str(low), "high": str(high)}), ""


def normalise_phone(value: str, region: str) -> str | None:
    """E.164 for a valid number, else None."""
    if is_valid_e164(value):  # most CRMs export E.164: nothing to parse or format
        return value
    number = valid_number(value, region)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def updated_record(form: Form, customer: Customer, values: Mapping[str, str]) -> Customer:
    """The customer with the submitted values of the fields that map to an attribute."""
    changes: dict[str, str] = {}
    attributes = dict(customer.attributes)
    for field in form.fields:
        if field.prefill_from is None or field.name not in values:
            continue
        if field.prefill_from in PREFILLABLE_ATTRIBUTES:
            changes[field.prefill_from] = values[field.name]
        elif field.prefill_from.startswith("attributes."):
            attributes[field.prefill_from.removeprefix("attributes.")] = values[field.name]
    return msgspec.structs.replace(customer, **changes, attributes=attributes)


def changed_fields(form: Form, before: Customer, after: Customer) -> list[str]:
    """The form fields whose stored value the submission changed: a data-quality signal."""
    return sorted(
        f.name
        for f in form.fields
        if f.prefill_from is not None
        and before.attribute(f.prefill_from) != after.attribute(f.prefill_from)
    )


def new_lead(
    form: Form, accepted: Accepted, posted: Mapping[str, str], locale: Locale
) -> Customer | Rejected:
    """A new customer record for someone who registered without a valid link. A customer
    record needs an email: without one in the submission, the form's email field is marked."""
    email_field = next((f for f in form.fields if f.prefill_from == "email"), None)
    email = accepted.values.get(email_field.name, "") if email_field else ""
    if not email:
        field_name = email_field.name if email_field else form.fields[0].name
        typed = {f.name: posted.get(f.name, "").strip() for f in form.fields}
        return Rejected(errors={field_name: FieldError(REQUIRED)}, typed=typed)
    # An id the CRM can tell from its own; it merges leads by email.
    return Customer(id=f"lead-{secrets.token_hex(8)}", email=email, locale=locale)
