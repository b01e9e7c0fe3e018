"""GET /metrics: Prometheus's text, for a key with the `metrics` scope (on the admin port when
there is one). Counts and latencies carry nothing personal, but a campaign's volumes are still
nobody else's business."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusController

from prefill.apikeys import Scope
from prefill.metrics import NOT_MEASURED
from prefill.web.admin import require_scope


class MetricsController(PrometheusController):
    """Not part of the API document; Prometheus sends the key as a Bearer token."""

    include_in_schema = False
    guards = [require_scope]  # noqa: RUF012 (Controller declares these; ClassVar would clash)
    opt = {NOT_MEASURED: True, "scope": Scope.METRICS}  # noqa: RUF012
