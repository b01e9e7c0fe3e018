"""Prometheus metrics: request latency by route, and how link resolutions end, by channel and
cause; served at /metrics (web/metrics.py) to a key with the `metrics` scope.

Labels take only values from fixed sets (route templates, channels, refusal causes), never an id,
a token or any other value from a request, so a scrape can carry nothing personal and the series
stay few.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

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
REQUEST_LABELS = ["method", "path", "status_code", "app_name"]
"""`path` is the route template, never the raw path: admin paths hold customer ids."""


class _Tally:
    """One label set's requests: how many, their seconds in total, and in each bucket."""

    __slots__ = ("buckets", "count", "created", "sum")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.buckets = [0] * len(_BOUNDS)
        self.created = time.time()


_BOUNDS = list(Histogram.DEFAULT_BUCKETS)
"""The histogram's upper bounds, as prometheus_client's default (the last one +Inf)."""
_BOUND_TEXTS: list[str] = [floatToGoString(bound) for bound in _BOUNDS]  # type: ignore[no-untyped-call]


class RequestMetrics:
    """The series of Litestar's Prometheus middleware (names, labels, help), which this
    replaces: requests, their duration, those in progress and those that failed, by method,
    route template and status. Kept as plain numbers and handed to the registry only when it
    is scraped (a custom collector): prometheus_client's own counters take a lock for each
    increment, six a request, about a thirtieth of a widget request's instructions. The
    service counts on its event loop alone, where the scrape also runs (an async handler)."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str, int], _Tally] = {}
        self._in_progress: dict[tuple[str, str], int] = {}

    def started(self, method: str, route: str) -> None:
        key = (method, route)
        self._in_progress[key] = self._in_progress.get(key, 0) + 1

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self._in_progress[method, route] -= 1
        tally = self._tallies.get((method, route, status))
        if tally is None:
            tally = self._tallies[method, route, status] = _Tally()
        tally.count += 1
        tally.sum += seconds
        tally.buckets[bisect.bisect_left(_BOUNDS, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        """The series as prometheus_client's Counter, Histogram and Gauge expose them."""
        requests = CounterMetricFamily("prefill_requests", "Total requests", labels=REQUEST_LABELS)
        errors = CounterMetricFamily(
            "prefill_requests_error", "Total errors in requests", labels=REQUEST_LABELS
        )
        seconds = HistogramMetricFamily(
            "prefill_request_duration_seconds",
            "Request duration, in seconds",
            labels=REQUEST_LABELS,
        )
        for (method, route, status), tally in list(self._tallies.items()):
            labels = [method, route, str(status), APP_NAME]
            requests.add_metric(labels, tally.count, created=tally.created)
            if status >= 500:
                errors.add_metric(labels, tally.count, created=tally.created)
            cumulative = list(itertools.accumulate(tally.buckets))
            buckets = list(zip(_BOUND_TEXTS, cumulative, strict=True))
            seconds.add_metric(labels, buckets, tally.sum)
        in_progress = GaugeMetricFamily(
            "prefill_requests_in_progress",
            "Total requests currently in progress",
            labels=REQUEST_LABELS,
        )
        for (method, route), count in list(self._in_progress.items()):
            # Labelled with status 200, as Litestar's middleware labels it.
            in_progress.add_metric([method, route, "200", APP_NAME], count)
        yield from (requests, seconds, in_progress, errors)


REQUEST_METRICS = RequestMetrics()
"""Every request layer's (Litestar makes one per route handler)."""
REGISTRY.register(REQUEST_METRICS)
