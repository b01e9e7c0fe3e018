"""The collector a bulk command runs with, put back as it was after it."""

from __future__ import annotations

import gc

from prefill.cli_support import BULK_GC_THRESHOLD, collector_for_bulk


def test_objects_frozen_before_a_bulk_run_stay_frozen_after_it() -> None:
    threshold = gc.get_threshold()
    gc.freeze()  # as a server process does after its start-up (web/heap.py)
    try:
        frozen = gc.get_freeze_count()
        with collector_for_bulk():
            assert gc.get_threshold()[0] == BULK_GC_THRESHOLD
        assert gc.get_freeze_count() >= frozen
        assert gc.get_threshold() == threshold
    finally:
        gc.unfreeze()


def test_a_bulk_run_unfreezes_what_it_froze() -> None:
    gc.unfreeze()
    with collector_for_bulk():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
