"""Prometheus metrics: request latency by route, and how link resolutions end, by channel and
cause; served at /metrics (web/metrics.py) to a key with the `metrics` scope.

Labels take only values from fixed sets (route templates, channels, refusal causes), never an id,
a token or any other value from a request, so a scrape can carry nothing personal and the series
stay few.
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import Counter

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
for _channel in LINK_CHANNELS:
    for _outcome in OUTCOMES:
        RESOLUTIONS.labels(_channel.value, _outcome)  # Every series exists from the start, at 0.


def count_resolution(channel: Channel, outcome: str) -> None:
    """One resolution of a personal link; `outcome` is one of OUTCOMES."""
    RESOLUTIONS.labels(channel.value, outcome).inc()


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

HTTP_METRICS = PrometheusConfig(
    app_name="prefill",
    prefix="prefill",
    group_path=True,  # The route template, never the raw path: admin paths hold customer ids.
    exclude_opt_key=NOT_MEASURED,
)
"""Litestar's request count, latency histogram, in-progress gauge and 5xx count. The middleware
keeps its metrics per name for the whole process, so every app built in it shares them."""
