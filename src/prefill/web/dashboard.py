"""The funnel dashboard: an admin page with each campaign's funnel as a chart drawn on the
server (SVG), with no script and nothing from a third party. Behind the admin key: a browser
asks for it with its own login prompt (the key as the password)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from litestar import Router, get
from litestar.di import Provide
from litestar.response import Template

from prefill.apikeys import Scope
from prefill.funnel import STAGE_LABELS, CampaignFunnel
from prefill.i18n import pick
from prefill.models import Campaign, Form, Locale
from prefill.scanners import Automation
from prefill.web.admin import AdminDep, provide_admin, require_scope

DASHBOARD_LOCALE: Locale = "en"
"""The dashboard's language: its own texts, and the form field labels it shows."""
BAR_SPACE = 290
"""Room for the longest bar; labels go before the bars, figures after them."""
ROW_HEIGHT = 34
BAR_HEIGHT = 22
GAP = 8
"""Between a label and its bar, and a bar and its figures; also the chart's margin."""
NARROW, AVERAGE, WIDE = 5.5, 8.5, 13.0
"""Upper bounds of character widths in the charts' 13px sans-serif (dashboard.css), taken
from DejaVu Sans, the widest of the common fallbacks (Linux browsers draw with it)."""

SIGNAL_LABELS = {
    Automation.HEAD: "Scanners: HEAD requests",
    Automation.AGENT: "Scanners: by user agent",
    Automation.EARLY: "Scanners: too soon after sending",
}


def text_width(text: str) -> float:
    """A generous estimate of how wide `text` is drawn: the server cannot measure the browser's
    font, and a chart sized to this leaves room rather than cutting a label off."""
    return sum(
        NARROW
        if char in "ijlfrtI.,:;'!|()[] ·"
        else WIDE
        if char.isupper() or char in "mw%@—"
        else AVERAGE
        for char in text
    )


class Bar(msgspec.Struct, frozen=True):
    key: str
    label: str
    value: int
    note: str
    y: int
    width: float

    @property
    def figure(self) -> str:
        """What is written after the bar: the value, and its note."""
        return f"{self.value:,} · {self.note}" if self.note else f"{self.value:,}"


class Chart(msgspec.Struct, frozen=True):
    title: str
    bars: list[Bar]
    label_width: float
    """Where the bars start: the longest label fits before it."""
    width: float
    """The whole chart, the longest bar's figures included."""

    @property
    def height(self) -> int:
        return len(self.bars) * ROW_HEIGHT + 8


def chart(title: str, rows: list[tuple[str, str, int, str]]) -> Chart:
    """Horizontal bars on one scale: (key, label, value, note) per row, the chart as wide as
    its labels and figures need."""
    longest = max((value for _, _, value, _ in rows), default=0) or 1
    bars = [
        Bar(
            key=key,
            label=label,
            value=value,
            note=note,
            y=4 + index * ROW_HEIGHT,
            width=round(value / longest * BAR_SPACE, 1),
        )
        for index, (key, label, value, note) in enumerate(rows)
    ]
    label_width = GAP + max((text_width(bar.label) for bar in bars), default=0) + GAP
    figures = max((bar.width + GAP + text_width(bar.figure) for bar in bars), default=0)
    return Chart(
        title=title,
        bars=bars,
        label_width=label_width,
        width=round(label_width + max(figures, BAR_SPACE) + GAP, 1),
    )


def share(part: int, whole: int, of: str) -> str:
    return f"{part / whole:.0%} of {of}" if whole else ""


def field_labels(campaign: Campaign | None, forms: Mapping[str, Form]) -> dict[str, str]:
    """The labels of the fields of a campaign's form, in the dashboard's language."""
    form = forms.get(campaign.form_id) if campaign else None
    return {f.name: pick(f.label, DASHBOARD_LOCALE) for f in form.fields} if form else {}


class CampaignView(msgspec.Struct, frozen=True):
    funnel: CampaignFunnel
    stages: Chart
    not_opens: Chart
    corrected: Chart | None


def campaign_view(f: CampaignFunnel, labels: Mapping[str, str]) -> CampaignView:
    """`labels`: the form's field labels by name (a field no longer on the form keeps its
    name)."""
    stages = [
        (
            key,
            label,
            getattr(f, key),
            "" if key == "issued" else share(getattr(f, key), f.issued, "issued"),
        )
        for key, label in STAGE_LABELS
    ]
    not_opens = [
        (f"scanner-{signal.value}", SIGNAL_LABELS[signal], f.scanner_hits.get(signal.value, 0), "")
        for signal in Automation
    ]
    not_opens.append(("loads", "Page and vCard loads", f.loads, "not automated"))
    corrected = [
        (name, labels.get(name, name), count, share(count, f.submissions, "submissions"))
        for name, count in sorted(f.corrected_fields.items(), key=lambda item: -item[1])
    ]
    return CampaignView(
        funnel=f,
        stages=chart(f"Funnel of {f.name or f.campaign_id}", stages),
        not_opens=chart("Other requests for the campaign's links", not_opens),
        corrected=chart("Prefilled fields people corrected", corrected) if corrected else None,
    )


@get(
    "/dashboard",
    name="dashboard",
    opt={"scope": Scope.READ, "browser": True},
    include_in_schema=False,
)
async def dashboard(admin: AdminDep) -> Template:
    campaigns = {c.id: c for c in await admin.entries(Campaign)}
    forms = {f.id: f for f in await admin.entries(Form)}
    views = [
        campaign_view(f, field_labels(campaigns.get(f.campaign_id), forms))
        for f in await admin.funnels()
    ]
    return Template(
        template_name="dashboard.html",
        context={
            "locale": DASHBOARD_LOCALE,
            "campaigns": views,
            "bar_height": BAR_HEIGHT,
            "gap": GAP,
        },
    )


dashboard_router = Router(
    path="/admin",
    route_handlers=[dashboard],
    guards=[require_scope],
    dependencies={"admin": Provide(provide_admin, sync_to_thread=False)},
)
