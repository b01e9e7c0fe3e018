"""A form's event for people: when and where in their language, and as an iCalendar file.

The file is RFC 5545, built with the `icalendar` library: one VEVENT with its VTIMEZONE, so
Outlook, Google Calendar and Apple Calendar place it at the same instant. Its UID is the form's,
so importing it twice updates one entry instead of adding a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from babel.dates import format_date, format_interval, format_skeleton, get_timezone_location

from prefill.i18n import pick
from prefill.models import ContactPerson, Event, Form, Locale

PRODUCT_ID = "-//prefill//event//EN"
TIME_ZONE_MARGIN = timedelta(days=366)
"""The VTIMEZONE covers a year either side of the event: enough for every calendar to place
it, a few lines instead of the zone's whole history."""


def event_name(form: Form, event: Event, locale: Locale) -> str:
    return pick(event.name, locale) or pick(form.title, locale)


def when_text(event: Event, locale: Locale) -> str:
    """E.g. "Thursday, April 15, 2027 09:00 - 16:00 (Finland Time)" in the customer's language:
    the event's own wall-clock time, with its zone named, since a customer may be elsewhere."""
    start, end = event.starts, event.ends
    zone = get_timezone_location(event.zone, locale=locale)
    if start.date() == end.date():
        times = format_interval(start, end, "Hm", tzinfo=event.zone, locale=locale)
        return f"{format_date(start, 'full', locale=locale)} {times} ({zone})"
    first = f"{format_date(start, 'full', locale=locale)} {_time(start, event, locale)}"
    last = f"{format_date(end, 'full', locale=locale)} {_time(end, event, locale)}"
    return f"{first} \N{EN DASH} {last} ({zone})"


def _time(moment: datetime, event: Event, locale: Locale) -> str:
    """The 24-hour time the same-day interval shows too ("9.00" in Finnish, "09:00" else)."""
    return format_skeleton("Hm", moment, tzinfo=event.zone, locale=locale)


def where_text(event: Event) -> str:
    """The place as one line ("name, address"), or "" for an event online only."""
    if event.place is None:
        return ""
    return ", ".join(part for part in (event.place.name, event.place.address) if part)


def ics_filename(form: Form) -> str:
    return f"{form.id}.ics"


def to_icalendar(
    form: Form,
    event: Event,
    *,
    locale: Locale,
    uid_domain: str,
    organizer: ContactPerson | None,
    now: datetime | None = None,
) -> bytes:
    """The event as an iCalendar (RFC 5545) file, METHOD:PUBLISH (an entry to add, not an
    invitation to answer). `organizer` is the customer's contact person, if they may see one."""
    entry = icalendar.Event()
    entry.add("uid", f"{form.id}@{uid_domain}")
    entry.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    entry.add("dtstart", event.starts)
    entry.add("dtend", event.ends)
    entry.add("summary", event_name(form, event, locale))
    if where := where_text(event) or (event.online_url or ""):
        entry.add("location", where)
    if event.online_url:
        entry.add("url", event.online_url)
    description = [pick(event.description, locale), event.online_url or ""]
    if text := "\n\n".join(part for part in description if part):
        entry.add("description", text)
    if organizer is not None:
        address = icalendar.vCalAddress(f"mailto:{organizer.email}")
        address.params["cn"] = icalendar.vText(organizer.name)
        entry.add("organizer", address)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(entry)
    calendar.add_missing_timezones(
        first_date=(event.starts - TIME_ZONE_MARGIN).date(),
        last_date=(event.ends + TIME_ZONE_MARGIN).date(),
    )
    ical: bytes = calendar.to_ical()
    return ical
