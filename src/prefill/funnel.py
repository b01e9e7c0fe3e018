"""The per-campaign funnel, without I/O: what each event counts, and the figures read back.

Links issued -> opened by a person -> shown prefilled -> submitted -> unsubscribed, plus the
prefilled fields people corrected and the hits of automated scanners, which are never opens.

Everything is a counter per campaign; no id is stored. People are counted once per stage with a
HyperLogLog (store/funnel.py) of keyed pseudonyms mixed with a salt of the campaign's own: it says
"how many" (exactly for small numbers in practice, within about 1% at a million), never "who".
While the salt lives, someone holding the service's keys and the data could still test whether
one given person is among them; the salt expires once the campaign's links have (at most twice
the link lifetime after the last mint), and from then on nobody can.

An open is counted only when a script ran in the person's browser: the hosted page's reporting
script, or the widget's own request. A page fetched without that is a load, which scanners
that do not look like one leave.
"""

from __future__ import annotations

import msgspec

from prefill.scanners import Automation

ISSUED = "issued"
"""Link sets minted (a customer minted for twice counts twice)."""
LOADS = "loads"
"""Pages, cards and vCards fetched by clients that did not look automated."""
OPENED = "opened"
PREFILLED = "prefilled"
SUBMITTED = "submitted"
UNSUBSCRIBED = "unsubscribed"
PEOPLE_STAGES = (OPENED, PREFILLED, SUBMITTED)
"""Stages counted both as events and as distinct people."""
SCANNER_PREFIX = "scanner:"
CHANGED_PREFIX = "changed:"


class FunnelUpdate(msgspec.Struct, frozen=True):
    """What one event adds to its campaign's funnel."""

    campaign_id: str
    counts: dict[str, int]
    people: dict[str, str] = msgspec.field(default_factory=dict)
    """Stage -> the customer id to count once in it (pseudonymised and salted when stored)."""
    link_lifetime: int = 0
    """The campaign's link lifetime (seconds), for updates that need its salt (people, links
    issued): the salt lives at least this long from now."""


class Person(msgspec.Struct, frozen=True):
    """Who a link names, as far as the funnel may count them."""

    customer_id: str
    link_lifetime: int
    """The campaign's link lifetime (seconds)."""
    countable: bool = True
    """False where the link is outside its campaign's life (expired, revoked) or names no
    customer any more: its events count, but not as a distinct person."""


def hit(
    campaign_id: str,
    person: Person,
    automation: Automation | None,
    *,
    script_ran: bool,
    prefilled: bool,
) -> FunnelUpdate:
    """A request for one of the campaign's links. An automated one counts only as a scanner
    hit; a person's is a load (a page or file fetched), or an open (and maybe prefilled) when
    a script made it: a page's report that it is in view, or the widget's request."""
    if automation is not None:
        # The member is its value's text (a StrEnum): no `.value`, an enum property's call.
        return FunnelUpdate(campaign_id, {SCANNER_PREFIX + automation: 1})
    if not script_ran:
        return FunnelUpdate(campaign_id, {LOADS: 1})
    stages = [OPENED, PREFILLED] if prefilled else [OPENED]
    return FunnelUpdate(
        campaign_id,
        dict.fromkeys(stages, 1),
        dict.fromkeys(stages, person.customer_id) if person.countable else {},
        person.link_lifetime,
    )


def submission(campaign_id: str, person: Person, corrected: list[str]) -> FunnelUpdate:
    """A form submitted through the campaign's link; `corrected` are the prefilled fields the
    person changed."""
    counts = {SUBMITTED: 1} | {CHANGED_PREFIX + name: 1 for name in corrected}
    return FunnelUpdate(campaign_id, counts, {SUBMITTED: person.customer_id}, person.link_lifetime)


def issued(campaign_id: str, link_sets: int, link_lifetime: int) -> FunnelUpdate:
    """Link sets minted: counted, with no one in them (a shard's salt is made when a person is
    first counted there, and lives as long as links from then on)."""
    return FunnelUpdate(campaign_id, {ISSUED: link_sets}, link_lifetime=link_lifetime)


def unsubscribed(campaign_id: str) -> FunnelUpdate:
    return FunnelUpdate(campaign_id, {UNSUBSCRIBED: 1})


class CampaignFunnel(msgspec.Struct, frozen=True, kw_only=True):
    """One campaign's figures, as the dashboard, the JSON API and the CSV show them."""

    campaign_id: str
    name: str
    state: str
    issued: int
    """Link sets minted."""
    opened: int
    """People who opened a link in a browser (a page script ran)."""
    prefilled: int
    """People who were shown the form prefilled."""
    submitted: int
    """People who submitted the form through their link."""
    unsubscribed: int
    """Customers who unsubscribed through the campaign's link."""
    opens: int
    """Opens, counting every time (a person opening twice counts twice)."""
    submissions: int
    """Submissions, counting every time."""
    loads: int
    """Pages, cards and vCards fetched by clients that did not look automated."""
    scanner_hits: dict[str, int]
    """Automated requests by signal: head, agent, early. Never counted as opens."""
    corrected_fields: dict[str, int]
    """Per form field: submissions that changed the value it was prefilled with."""


def figures(
    campaign_id: str,
    name: str,
    state: str,
    counts: dict[str, int],
    people: dict[str, int],
) -> CampaignFunnel:
    """The funnel from the stored counters and the distinct-people counts per stage."""
    # An estimate may exceed its exact event count by a hair; people never outnumber events.
    distinct = {stage: min(people.get(stage, 0), counts.get(stage, 0)) for stage in PEOPLE_STAGES}
    return CampaignFunnel(
        campaign_id=campaign_id,
        name=name,
        state=state,
        issued=counts.get(ISSUED, 0),
        opened=distinct[OPENED],
        prefilled=distinct[PREFILLED],
        submitted=distinct[SUBMITTED],
        unsubscribed=counts.get(UNSUBSCRIBED, 0),
        opens=counts.get(OPENED, 0),
        submissions=counts.get(SUBMITTED, 0),
        loads=counts.get(LOADS, 0),
        scanner_hits={
            signal.value: counts.get(SCANNER_PREFIX + signal.value, 0) for signal in Automation
        },
        corrected_fields={
            key.removeprefix(CHANGED_PREFIX): value
            for key, value in sorted(counts.items())
            if key.startswith(CHANGED_PREFIX)
        },
    )


STAGE_LABELS = (
    ("issued", "Links issued"),
    ("opened", "Opened by a person"),
    ("prefilled", "Shown prefilled"),
    ("submitted", "Submitted"),
    ("unsubscribed", "Unsubscribed"),
)


def table(funnels: list[CampaignFunnel]) -> tuple[list[str], list[list[str | int]]]:
    """A header and one row per campaign; a column per corrected field of any campaign."""
    corrected = sorted({name for f in funnels for name in f.corrected_fields})
    signals = [signal.value for signal in Automation]
    header = [
        "campaign_id",
        "name",
        "state",
        *(stage for stage, _ in STAGE_LABELS),
        "opens",
        "submissions",
        "loads",
        *(f"scanner_{signal}" for signal in signals),
        *(f"corrected_{name}" for name in corrected),
    ]
    rows: list[list[str | int]] = [
        [
            spreadsheet_safe(f.campaign_id),
            spreadsheet_safe(f.name),
            f.state,
            *(getattr(f, stage) for stage, _ in STAGE_LABELS),
            f.opens,
            f.submissions,
            f.loads,
            *(f.scanner_hits.get(signal, 0) for signal in signals),
            *(f.corrected_fields.get(name, 0) for name in corrected),
        ]
        for f in funnels
    ]
    return header, rows


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet shows as text: a leading = + - @ would make it a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
