"""The funnel dashboard: an admin page with each campaign's funnel as a chart drawn on the
server (SVG), with no script and nothing from a third party. Behind the admin key: a browser
asks for it with its own login prompt (the key as the password)."""

from __future__ import annotations

import msgspec
from litestar import Router, get
from litestar.di import Provide
from litestar.response import Template

from prefill.apikeys import Scope
from prefill.funnel import STAGE_LABELS, CampaignFunnel
from prefill.scanners import Automation
from prefill.web.admin import AdminDep, provide_admin, require_scope

CHART_WIDTH = 640
LABEL_WIDTH = 250
BAR_SPACE = 290
"""Room for the longest bar; its figures are written after it."""
ROW_HEIGHT = 34
BAR_HEIGHT = 22

SIGNAL_LABELS = {
    Automation.HEAD: "Scanners: HEAD requests",
    Automation.AGENT: "Scanners: by user agent",
    Automation.EARLY: "Scanners: too soon after sending",
}


class Bar(msgspec.Struct, frozen=True):
    key: str
    label: str
    value: int
    note: str
    y: int
    width: float


class Chart(msgspec.Struct, frozen=True):
    title: str
    bars: list[Bar]

    @property
    def height(self) -> int:
        return len(self.bars) * ROW_HEIGHT + 8


def chart(title: str, rows: list[tuple[str, str, int, str]]) -> Chart:
    """Horizontal bars on one scale: (key, label, value, note) per row."""
    longest = max((value for _, _, value, _ in rows), default=0) or 1
    return Chart(
        title=title,
        bars=[
            Bar(
                key=key,
                label=label,
                value=value,
                note=note,
                y=4 + index * ROW_HEIGHT,
                width=round(value / longest * BAR_SPACE, 1),
            )
            for index, (key, label, value, note) in enumerate(rows)
        ],
    )


def share(part: int, whole: int, of: str) -> str:
    return f"{part / whole:.0%} of {of}" if whole else ""


class CampaignView(msgspec.Struct, frozen=True):
    funnel: CampaignFunnel
    stages: Chart
    not_opens: Chart
    corrected: Chart | None


def campaign_view(f: CampaignFunnel) -> CampaignView:
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
        (name, name, count, share(count, f.submissions, "submissions"))
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
    views = [campaign_view(f) for f in await admin.funnels()]
    return Template(
        template_name="dashboard.html",
        context={
            "locale": "en",
            "campaigns": views,
            "label_width": LABEL_WIDTH,
            "chart_width": CHART_WIDTH,
            "bar_height": BAR_HEIGHT,
        },
    )


dashboard_router = Router(
    path="/admin",
    route_handlers=[dashboard],
    guards=[require_scope],
    dependencies={"admin": Provide(provide_admin, sync_to_thread=False)},
)
