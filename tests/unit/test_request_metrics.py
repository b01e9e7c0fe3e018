"""The request series, kept as plain numbers, read as prometheus_client's own metrics read."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from prefill.metrics import APP_NAME, REQUEST_LABELS, RequestMetrics

REQUESTS = [
    ("GET", "/health/live", 200, 0.0004),
    ("GET", "/health/live", 200, 0.005),  # on a bucket's bound: counted in it
    ("GET", "/f/{form_id}", 200, 0.3),
    ("POST", "/f/{form_id}/submit", 503, 2.0),
    ("GET", "/f/{form_id}", 404, 12.0),  # beyond the last finite bound
]


def exposition(registry: CollectorRegistry) -> list[str]:
    """The scrape's lines, without the creation times (when each series was first made)."""
    lines = generate_latest(registry).decode().splitlines()
    return sorted(line for line in lines if "_created" not in line)


def test_the_scrape_is_prometheus_clients_for_the_same_requests() -> None:
    ours = CollectorRegistry()
    metrics = RequestMetrics()
    ours.register(metrics)
    theirs = CollectorRegistry()
    requests = Counter("prefill_requests_total", "Total requests", REQUEST_LABELS, registry=theirs)
    seconds = Histogram(
        "prefill_request_duration_seconds",
        "Request duration, in seconds",
        REQUEST_LABELS,
        registry=theirs,
    )
    in_progress = Gauge(
        "prefill_requests_in_progress",
        "Total requests currently in progress",
        REQUEST_LABELS,
        registry=theirs,
    )
    errors = Counter(
        "prefill_requests_error_total", "Total errors in requests", REQUEST_LABELS, registry=theirs
    )
    for method, route, status, took in REQUESTS:
        labels = (method, route, str(status), APP_NAME)
        metrics.started(method, route)
        metrics.finished(method, route, status, took)
        in_progress.labels(method, route, "200", APP_NAME).inc()
        in_progress.labels(method, route, "200", APP_NAME).dec()
        requests.labels(*labels).inc()
        seconds.labels(*labels).observe(took)
        if status >= 500:
            errors.labels(*labels).inc()
    metrics.started("GET", "/card")  # still in progress at the scrape
    in_progress.labels("GET", "/card", "200", APP_NAME).inc()
    assert exposition(ours) == exposition(theirs)
