"""The records the service stores and exchanges, as msgspec Structs.

Every shape that crosses a boundary (Redis, CSV/JSON import, the JSON API) is declared here, so
validation happens once, at decode time, with errors that name the field.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from prefill.text import CONTROL, MULTILINE_TEXT_PATTERN, PLAIN_TEXT_PATTERN

Locale = Literal["fi", "sv", "en"]
SUPPORTED_LOCALES: tuple[Locale, ...] = ("fi", "sv", "en")
DEFAULT_LOCALE: Locale = "en"

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ORIGIN_PATTERN = r"^https?://[^/\s]+$"
HTTP_URL_PATTERN = f"^https?://[^\\s{CONTROL}]+$"
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+/-]{0,63}$"
ATTRIBUTE_PATTERN = (
    r"^(email|first_name|last_name|phone|company|job_title|attributes\.[A-Za-z0-9_-]+)$"
)

Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
"""Ids appear in Redis keys and URLs, so they are restricted to a safe alphabet."""

EMAIL_MAX_LENGTH = 254
SHORT_TEXT_MAX_LENGTH = 200
Email = Annotated[str, msgspec.Meta(pattern=EMAIL_PATTERN, max_length=EMAIL_MAX_LENGTH)]
ShortText = Annotated[
    str, msgspec.Meta(max_length=SHORT_TEXT_MAX_LENGTH, pattern=PLAIN_TEXT_PATTERN)
]
"""One line of text; control characters would carry structure into vCards and CSV files."""
PlainText = Annotated[str, msgspec.Meta(pattern=PLAIN_TEXT_PATTERN)]
MultilineText = Annotated[str, msgspec.Meta(pattern=MULTILINE_TEXT_PATTERN)]
Origin = Annotated[str, msgspec.Meta(pattern=ORIGIN_PATTERN)]
"""scheme://host[:port], exactly as a browser sends it in the Origin header."""
HttpUrl = Annotated[str, msgspec.Meta(pattern=HTTP_URL_PATTERN, max_length=2000)]
"""An http(s) address a page may link to: no other scheme (javascript:, data:), no spaces."""
AttributeName = Annotated[str, msgspec.Meta(pattern=ATTRIBUTE_PATTERN)]
"""A customer attribute a form field may be prefilled from."""
Translated = dict[Locale, PlainText]
"""A text per locale; lookups fall back to English, then to any text present."""


class ContactPerson(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A company employee shown to customers as their personal contact (or a team address)."""

    id: Id
    name: ShortText
    title: Translated
    email: Email
    phone: ShortText = ""
    languages: list[Locale] = msgspec.field(default_factory=list)
    active: bool = True
    """False once the person has left: their customers are shown the deputy instead."""
    deputy_id: Id | None = None
    has_photo: bool = False
    kind: Literal["person", "team"] = "person"
    """A team (e.g. customer service) is shown and exported as an organisation, not a person."""


class Customer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A known customer; `generation` is bumped to kill every link issued so far."""

    id: Id
    email: Email
    first_name: ShortText = ""
    last_name: ShortText = ""
    phone: ShortText = ""
    company: ShortText = ""
    job_title: ShortText = ""
    locale: Locale = DEFAULT_LOCALE
    owner_id: Id | None = None
    attributes: dict[str, MultilineText] = msgspec.field(default_factory=dict)
    generation: int = 0

    def attribute(self, name: str) -> str:
        """The value a form field with `prefill_from=name` would show ("" when unknown)."""
        if name.startswith("attributes."):
            return self.attributes.get(name.removeprefix("attributes."), "")
        value = getattr(self, name, "") if name in PREFILLABLE_ATTRIBUTES else ""
        return value if isinstance(value, str) else ""


PREFILLABLE_ATTRIBUTES = frozenset(
    {"email", "first_name", "last_name", "phone", "company", "job_title"}
)

FieldType = Literal["text", "email", "tel", "select", "textarea", "rating", "nps"]
SCALES: dict[str, tuple[int, int]] = {"rating": (1, 5), "nps": (0, 10)}
"""The lowest and highest answer of each scale field type: a rating, and a Net Promoter Score."""


class FieldOption(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: ShortText
    label: Translated


class FormField(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One input of a form and the rules for prefilling it."""

    name: Id
    label: Translated
    type: FieldType = "text"
    required: bool = False
    prefill_from: AttributeName | None = None
    """Customer attribute that fills this field: a column name or `attributes.<key>`."""
    prefill: bool = True
    """False keeps the field empty even when consent allows prefill (data minimisation)."""
    masked: bool = False
    """Shown partly hidden (e.g. `m•••@example.fi`), so the page does not expose the full value."""
    max_length: Annotated[int, msgspec.Meta(ge=1, le=2000)] = 200
    options: list[FieldOption] = msgspec.field(default_factory=list)

    @property
    def value_max_length(self) -> int:
        """The longest value the field takes: its own limit, capped by what the customer
        attribute it fills can hold (a longer one would make a record that no longer decodes)."""
        if self.prefill_from is None or self.prefill_from.startswith("attributes."):
            return self.max_length
        held = EMAIL_MAX_LENGTH if self.prefill_from == "email" else SHORT_TEXT_MAX_LENGTH
        return min(self.max_length, held)


class ConsentNotice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A consent checkbox a form presents: the purpose and the exact, versioned notice text."""

    purpose: Id
    version: Id
    text: Translated


class Place(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where an event is: shown as "name, address" and as the calendar entry's LOCATION."""

    name: ShortText
    address: ShortText = ""


class Event(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a form registers for: shown on its thank-you page and offered as a calendar file.

    `start` and `end` may be given as wall-clock times in `time_zone` (`2027-04-15T09:00:00`)
    or with an offset (that instant); they are kept with the zone's offset at that time
    (`2027-04-15T09:00:00+03:00`), so every stored or listed event is an RFC 3339 date-time."""

    start: datetime
    end: datetime
    time_zone: Annotated[str, msgspec.Meta(pattern=TIME_ZONE_PATTERN)]
    """An IANA time zone name, e.g. `Europe/Helsinki`."""
    name: Translated = msgspec.field(default_factory=dict)
    """The event's own name (the calendar entry's title); the form's title without it."""
    place: Place | None = None
    online_url: HttpUrl | None = None
    description: dict[Locale, MultilineText] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        # msgspec turns a ValueError here into a ValidationError that names `$.event`.
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        start, end = _in_zone(self.start, zone), _in_zone(self.end, zone)
        if end <= start:
            raise ValueError("the event must end after it starts")
        # Kept as instants in the zone: stored and listed with their offset (RFC 3339).
        msgspec.structs.force_setattr(self, "start", start)
        msgspec.structs.force_setattr(self, "end", end)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def starts(self) -> datetime:
        """The start in the event's zone (with its daylight saving rules)."""
        return self.start.astimezone(self.zone)

    @property
    def ends(self) -> datetime:
        return self.end.astimezone(self.zone)


def _in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time taken as in `zone`; an instant (with an offset) shown in `zone`."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


FormKind = Literal["registration", "feedback"]


class Form(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Id
    title: Translated
    fields: list[FormField]
    prefill_purpose: Id = "personalization"
    """The consent purpose a customer must have granted before anything is prefilled."""
    intro: Translated = msgspec.field(default_factory=dict)
    consents: list[ConsentNotice] = msgspec.field(default_factory=list)
    allowed_origins: list[Origin] = msgspec.field(default_factory=list)
    """Origins (scheme://host[:port]) whose pages may read prefill data through the widget API."""
    fallback_contact_id: Id | None = None
    """Shown when a customer has no contact person, or theirs has left and has no deputy."""
    kind: FormKind = "registration"
    """What the form asks for: its button and thank-you page say "register" or "send"."""
    event: Event | None = None


class CampaignState(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class Campaign(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A mailing whose links open `form_id`; revoking it kills all of its links at once."""

    id: Id
    form_id: Id
    name: ShortText = ""
    link_lifetime_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    state: CampaignState = CampaignState.ACTIVE

    @property
    def link_lifetime_seconds(self) -> int:
        return self.link_lifetime_days * 86_400


class ConsentAction(enum.StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class ConsentSource(enum.StrEnum):
    FORM = "form"
    ADMIN = "admin"
    IMPORT = "import"
    UNSUBSCRIBE = "unsubscribe"


class ConsentEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One entry of a customer's append-only consent history."""

    purpose: Id
    action: ConsentAction
    at: float
    """Server time (Unix seconds) when the event was recorded."""
    source: ConsentSource
    notice_version: str = ""
    actor: str = ""
    ip_prefix: str = ""
    """Client address truncated to /24 (IPv4) or /48 (IPv6): evidence without identifying a host."""
    user_agent: str = ""


class ChangeKind(enum.StrEnum):
    CONSENT = "consent"
    SUBMISSION = "submission"
    CUSTOMER = "customer"
    ERASURE = "erasure"


class ChangeEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One entry of the change feed that a CRM, a warehouse or support consumes (the schema is
    documented in docs/change-feed.md)."""

    kind: ChangeKind
    customer_id: str
    at: float
    consent: ConsentEvent | None = None
    """The recorded event, for `consent`."""
    form_id: str = ""
    campaign_id: str = ""
    values: dict[str, str] = msgspec.field(default_factory=dict)
    """What the person submitted, for `submission` (removed from the feed on erasure)."""
    changed: list[str] = msgspec.field(default_factory=list)
    """Which submitted fields differ from what was prefilled or stored: a data-quality signal."""


class Catalog(msgspec.Struct, frozen=True):
    """Forms, campaigns and contact persons: small, shared by all customers, cached per process."""

    version: int
    forms: dict[str, Form]
    campaigns: dict[str, Campaign]
    contacts: dict[str, ContactPerson]


class Channel(enum.StrEnum):
    """Where personal data was (or would have been) shown."""

    PAGE = "page"
    WIDGET = "widget"
    CARD = "card"
    VCARD = "vcard"
    EXPORT = "export"
    ADMIN = "admin"
    """Read through the admin API or the operator's CLI."""


class Actor(msgspec.Struct, frozen=True):
    """Who asks, for the audit and for consent evidence (IP already truncated)."""

    name: str
    ip_prefix: str = ""
    user_agent: str = ""


class AuditKind(enum.StrEnum):
    DISCLOSURE = "disclosure"
    NOT_YOU = "not_you"
    CONSENT = "consent"
    ADMIN = "admin"
    SUBMISSION = "submission"


class AuditEntry(msgspec.Struct, frozen=True, omit_defaults=True):
    """A provable record of a disclosure or a change. Never holds a raw token. (Refused links
    are counted, not recorded one by one: see store/audit.py.)"""

    kind: AuditKind
    at: float
    channel: Channel | None = None
    customer_id: str = ""
    campaign_id: str = ""
    form_id: str = ""
    fields: list[str] = msgspec.field(default_factory=list)
    scanner: bool = False
    """The client looked like an automated link scanner (HEAD request or a known scanner agent)."""
    action: str = ""
    """What changed, for consent and admin entries, e.g. `consent.withdrawn` or `customer.erase`."""
    actor: str = ""
    """Who acted: an API key (`key:<id>`), `cli:<user>`, the customer's own link, or an import."""
    target: str = ""
    """The record an admin action touched when it is not a customer, e.g. `form:<id>`."""
