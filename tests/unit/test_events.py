"""A form's event: its validation, how people read it, and the iCalendar file, parsed back with
two independent parsers (icalendar and vobject)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import icalendar
import msgspec
import pytest
import vobject

from prefill.events import to_icalendar, when_text, where_text
from prefill.imports import parse_forms
from prefill.models import ContactPerson, Event, Form
from tests.conftest import EXAMPLES

AINO = ContactPerson(
    id="aino-virtanen",
    name="Aino Virtanen",
    title={"en": "Account Manager"},
    email="aino.virtanen@kaamos.example",
)
DASH = "\N{EN DASH}"
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def event_of(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "start": "2027-04-15T09:00:00",
        "end": "2027-04-15T16:30:00",
        "time_zone": "Europe/Helsinki",
        "place": {"name": "Kaamos office", "address": "Revontulentie 8, 00100 Helsinki"},
        "online_url": "https://kaamos.example/live",
        "description": {"en": "Doors open at 8:30."},
    }
    return msgspec.convert(fields | overrides, Event)


def form_with(event: Event, **overrides: Any) -> Form:
    return Form(
        id="summit", title={"en": "Summit: registration"}, fields=[], event=event, **overrides
    )


def calendar_of(form: Form, organizer: ContactPerson | None = AINO) -> icalendar.Calendar:
    assert form.event is not None
    text = to_icalendar(
        form, form.event, locale="en", uid_domain="prefill.example", organizer=organizer, now=NOW
    )
    assert text.endswith(b"END:VCALENDAR\r\n")
    return icalendar.Calendar.from_ical(text)


def only_event(calendar: icalendar.Calendar) -> icalendar.Event:
    (entry,) = calendar.walk("VEVENT")
    assert isinstance(entry, icalendar.Event)
    return entry


def test_the_file_has_what_calendars_need_with_the_time_in_its_zone() -> None:
    calendar = calendar_of(form_with(event_of(name={"en": "Kaamos Spring Summit"})))
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["PRODID"]
    entry = only_event(calendar)
    assert str(entry["UID"]) == "summit@prefill.example"
    assert entry.decoded("DTSTAMP") == NOW
    assert entry["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert entry.start.isoformat() == "2027-04-15T09:00:00+03:00"
    assert entry.decoded("DTEND").isoformat() == "2027-04-15T16:30:00+03:00"
    (zone,) = calendar.walk("VTIMEZONE")
    assert zone["TZID"] == "Europe/Helsinki"
    assert str(entry["SUMMARY"]) == "Kaamos Spring Summit"
    assert str(entry["LOCATION"]) == "Kaamos office, Revontulentie 8, 00100 Helsinki"
    assert str(entry["URL"]) == "https://kaamos.example/live"
    assert str(entry["DESCRIPTION"]) == "Doors open at 8:30.\n\nhttps://kaamos.example/live"
    organizer = entry["ORGANIZER"]
    assert str(organizer) == "mailto:aino.virtanen@kaamos.example"
    assert organizer.params["CN"] == "Aino Virtanen"


def test_a_second_parser_reads_the_same_instant_and_organizer() -> None:
    form = form_with(event_of())
    assert form.event is not None
    text = to_icalendar(form, form.event, locale="en", uid_domain="p.example", organizer=AINO)
    parsed = vobject.readOne(text.decode())
    entry = parsed.vevent
    assert entry.dtstart.value.astimezone(UTC) == datetime(2027, 4, 15, 6, 0, tzinfo=UTC)
    assert entry.organizer.value == "mailto:aino.virtanen@kaamos.example"
    assert entry.organizer.params["CN"] == ["Aino Virtanen"]


def test_hostile_text_stays_text_and_adds_no_property_or_component() -> None:
    hostile = 'Summit; "VIP", \\ day\nEND:VEVENT\nBEGIN:VEVENT\nSUMMARY:injected'
    organizer = msgspec.structs.replace(AINO, name='Aino "The Boss"; Virtanen: CEO, Ltd')
    form = form_with(
        event_of(
            name={"en": "Summit; ORGANIZER:mailto:evil@example.com"},
            description={"en": hostile},
            place={"name": "Hall A, B; C", "address": "Street 1\\2"},
        )
    )
    entry = only_event(calendar_of(form, organizer))
    assert str(entry["SUMMARY"]) == "Summit; ORGANIZER:mailto:evil@example.com"
    assert str(entry["DESCRIPTION"]) == f"{hostile}\n\nhttps://kaamos.example/live"
    assert str(entry["LOCATION"]) == "Hall A, B; C, Street 1\\2"
    assert entry["ORGANIZER"].params["CN"] == 'Aino "The Boss"; Virtanen: CEO, Ltd'
    assert str(entry["ORGANIZER"]) == "mailto:aino.virtanen@kaamos.example"


def test_utc_and_times_with_an_offset() -> None:
    entry = only_event(calendar_of(form_with(event_of(time_zone="UTC"))))
    assert entry.decoded("DTSTART") == datetime(2027, 4, 15, 9, 0, tzinfo=UTC)
    # An instant with an offset is kept as that instant, written in the event's zone.
    shifted = event_of(start="2027-04-15T06:00:00Z", end="2027-04-15T13:30:00+00:00")
    entry = only_event(calendar_of(form_with(shifted)))
    assert entry["DTSTART"].params["TZID"] == "Europe/Helsinki"
    assert entry.start == datetime(2027, 4, 15, 6, 0, tzinfo=UTC)  # the same instant
    assert entry.start.isoformat() == "2027-04-15T09:00:00+03:00"  # written in Helsinki time


def test_an_event_without_organizer_place_or_url_still_makes_a_file() -> None:
    bare = event_of(place=None, online_url=None, description={})
    entry = only_event(calendar_of(form_with(bare), organizer=None))
    for absent in ("ORGANIZER", "LOCATION", "URL", "DESCRIPTION"):
        assert absent not in entry
    assert str(entry["SUMMARY"]) == "Summit: registration"  # the form's title


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"end": "2027-04-15T09:00:00"}, "the event must end after it starts"),
        ({"end": "2027-04-15T08:00:00"}, "the event must end after it starts"),
        ({"time_zone": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
        ({"time_zone": "../../etc/passwd"}, "Expected `str` matching regex"),
        ({"online_url": "javascript:alert(1)"}, "at `$.online_url`"),
        ({"online_url": "https://kaamos.example/a b"}, "at `$.online_url`"),
        ({"place": {"name": "Hall\rBEGIN:VEVENT"}}, "at `$.place.name`"),
        ({"description": {"en": "one\u2028two"}}, "at `$.description[...]`"),
        ({"start": "15.4.2027 9:00"}, "Invalid RFC3339 encoded datetime"),
    ],
)
def test_a_bad_event_is_refused_naming_the_problem(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(message)):
        event_of(**overrides)


def test_an_end_with_an_offset_is_compared_as_an_instant() -> None:
    # 06:30Z is 09:30 in Helsinki: after the 09:00 start, though "06:30" < "09:00".
    assert event_of(end="2027-04-15T06:30:00Z").ends.hour == 9


@pytest.mark.parametrize(
    ("locale", "text"),
    [
        ("fi", f"torstai 15. huhtikuuta 2027 9.00{DASH}16.30 (aikavyöhyke: Suomi)"),
        ("sv", f"torsdag 15 april 2027 09:00{DASH}16:30 (Finlandtid)"),
        ("en", f"Thursday, April 15, 2027 09:00\u2009{DASH}\u200916:30 (Finland Time)"),
    ],
)
def test_when_is_in_the_customers_language_and_names_the_zone(locale: Any, text: str) -> None:
    assert when_text(event_of(), locale) == text


def test_an_event_over_several_days_names_both() -> None:
    text = when_text(event_of(end="2027-04-16T12:00:00"), "fi")
    assert text == (
        f"torstai 15. huhtikuuta 2027 9.00 {DASH} perjantai 16. huhtikuuta 2027 12.00"
        " (aikavyöhyke: Suomi)"
    )


def test_where_is_one_line_or_empty_online() -> None:
    assert where_text(event_of()) == "Kaamos office, Revontulentie 8, 00100 Helsinki"
    assert where_text(event_of(place=None)) == ""


def test_the_example_registration_form_has_its_event() -> None:
    registration, feedback = parse_forms((EXAMPLES / "forms.json").read_bytes())
    assert registration.event is not None
    assert registration.event.starts.isoformat() == "2027-04-15T09:00:00+03:00"
    assert feedback.kind == "feedback"
    assert feedback.event is None
