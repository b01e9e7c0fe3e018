"""A log line's time, as datetime writes it in ISO 8601 (UTC, to the microsecond, "Z")."""

from __future__ import annotations

import datetime
import json

import pytest

from prefill.logs import AccessLine, _access_json, _utc


@pytest.mark.parametrize(
    "created",
    [0.0, 1.25, 1_764_864_000.0, 1_764_864_000.999999, 1_764_864_059.5, 1_796_083_199.000001],
)
def test_a_stamp_is_datetimes_isoformat(created: float) -> None:
    expected = datetime.datetime.fromtimestamp(created, datetime.UTC)
    stamp = _utc(created)
    assert stamp.endswith("Z")
    parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((parsed - expected).total_seconds()) < 2e-6  # float seconds, to the µs
    assert stamp[:19] == expected.isoformat()[:19]
    line = AccessLine(method="GET", route="/", status=200, duration_ms=0.1, request_id="")
    assert json.loads(_access_json(line, "info", "prefill.requests", created))["timestamp"] == stamp


def test_stamps_of_one_second_share_its_text_and_differ_below_it() -> None:
    assert _utc(100.25)[:20] == _utc(100.75)[:20] == "1970-01-01T00:01:40."
    assert _utc(100.25) != _utc(100.75)
