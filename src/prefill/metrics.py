"""Prometheus metrics: request latency by route, and how link resolutions end, by channel and
cause; served at /metrics (web/metrics.py) to a key with the `metrics` scope.

Labels take only values from fixed sets (route templates, channels, refusal causes), never an id,
a token or any other value from a request, so a scrape can carry nothing personal and the series
stay few.
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram

from prefill.models import Channel
from prefill.ratelimit import LimitKind
from prefill.tokens import RefusalCause

VALID = "valid"
"""Admitted and disclosed."""
REDIS_UNAVAILABLE = "redis_unavailable"
"""Failed closed: consent state or the audit could not be read or written."""
OUTCOMES = (VALID, *(cause.value for cause in RefusalCause), REDIS_UNAVAILABLE)

RESOLUTIONS = Counter(
    "prefill_link_resolutions_total",
    "Personal links resolved, by channel and outcome (valid, a refusal cause, or "
    "redis_unavailable).",
    ["channel", "outcome"],
)
LINK_CHANNELS = (Channel.PAGE, Channel.WIDGET, Channel.CARD, Channel.VCARD)
"""Where a personal link is resolved (export and admin reads take no link)."""

_RESOLUTION_SERIES = {
    (channel, outcome): RESOLUTIONS.labels(channel.value, outcome)
    for channel in LINK_CHANNELS
    for outcome in OUTCOMES
}
"""Every series, there from the start at 0, its child looked up once (`labels()` takes a
lock and builds a key per call)."""


def count_resolution(channel: Channel, outcome: str) -> None:
    """One resolution of a personal link; `outcome` is one of OUTCOMES."""
    series = _RESOLUTION_SERIES.get((channel, outcome))
    if series is None:  # a channel without links of its own (an export's, an admin read's)
        series = RESOLUTIONS.labels(channel.value, outcome)
    series.inc()


RATE_LIMITED = Counter(
    "prefill_rate_limited_total",
    "Requests answered 429, by the limit they were over (refused_links, link_requests, "
    "admin_failures).",
    ["limit"],
)
for _kind in LimitKind:
    RATE_LIMITED.labels(_kind.value)


def count_rate_limited(kind: LimitKind) -> None:
    RATE_LIMITED.labels(kind.value).inc()


NOT_MEASURED = "not_measured"
"""A route handler `opt` key: the scrape itself is not a request worth a latency series."""

APP_NAME = "prefill"
REQUEST_LABELS = ("method", "path", "status_code", "app_name")
"""`path` is the route template, never the raw path: admin paths hold customer ids."""
REQUESTS = Counter("prefill_requests_total", "Total requests", REQUEST_LABELS)
REQUEST_SECONDS = Histogram(
    "prefill_request_duration_seconds", "Request duration, in seconds", REQUEST_LABELS
)
IN_PROGRESS = Gauge(
    "prefill_requests_in_progress",
    "Total requests currently in progress",
    REQUEST_LABELS,
    multiprocess_mode="livesum",
)
ERRORS = Counter("prefill_requests_error_total", "Total errors in requests", REQUEST_LABELS)
"""The series (names, labels, help) of Litestar's Prometheus middleware, which this replaces:
one layer (web/requests.py) measures a request once, with its label sets looked up once."""


class _Series(NamedTuple):
    requests: Counter
    seconds: Histogram


class RequestMetrics:
    """The request series of one route, with each label set's children kept after first use
    (`labels()` takes a lock and builds a key on every call)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._in_progress: dict[tuple[str, str], Gauge] = {}

    def started(self, method: str, route: str) -> None:
        gauge = self._in_progress.get((method, route))
        if gauge is None:
            # Labelled with status 200, as Litestar's middleware labels it.
            gauge = IN_PROGRESS.labels(method, route, "200", APP_NAME)
            self._in_progress[method, route] = gauge
        gauge.inc()

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self._in_progress[method, route].dec()
        series = self._series.get((method, route, status))
        if series is None:
            labels = (method, route, str(status), APP_NAME)
            series = _Series(REQUESTS.labels(*labels), REQUEST_SECONDS.labels(*labels))
            self._series[method, route, status] = series
        series.requests.inc()
        series.seconds.observe(seconds)
        if status >= 500:
            ERRORS.labels(method, route, str(status), APP_NAME).inc()
