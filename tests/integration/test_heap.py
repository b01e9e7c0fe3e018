"""A served app sets its start-up heap aside from the garbage collector (web/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from prefill.cli import serving_app
from prefill.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's heap as it was: frozen objects are never collected."""
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_the_served_app_freezes_its_start_up_heap(settings: Settings, unfrozen: None) -> None:
    app = serving_app(settings)
    assert gc.get_freeze_count() == 0
    async with AsyncTestClient(app) as client:
        frozen = gc.get_freeze_count()
        # The app's routes and templates, the Redis client: all of start-up, not a handful.
        assert frozen > 10_000
        assert (await client.get("/health/live")).status_code == 200
