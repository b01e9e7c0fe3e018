"""The garbage collector of a long-running server: its start-up heap set aside once.

CPython's full collection walks every tracked object. A served app holds about 100,000 of them
from start-up (Litestar's routes, the templates, the clients) that live as long as the process,
and under load objects of requests in flight are promoted often enough to set off a full
collection every few seconds: each one walked the whole heap in 50-100 ms, with every request
in flight waiting (the widget's p99). Frozen after start-up, those objects are never walked
again (the gc module's own advice for long-running processes).
"""

from __future__ import annotations

import gc

from litestar import Litestar


async def freeze_start_up_heap(app: Litestar) -> None:
    """On start-up, after the lifespan has connected Redis and loaded the catalog."""
    gc.collect()
    gc.freeze()
