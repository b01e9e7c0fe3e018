"""The change feed: a stream of changes (submissions, consent, erasures) for other systems."""

from __future__ import annotations

import time

import msgspec

from prefill.models import ChangeEvent
from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import feed_key_of

FEED_RETENTION_SECONDS = 7 * 86_400
"""Consumers are expected to keep up within days; older changes are in the records themselves."""

_encoder = msgspec.json.Encoder()


class FeedStore(StoreBase):
    async def publish_change(self, change: ChangeEvent) -> None:
        """Append to the customer's shard of the change feed; entries older than the feed
        retention are dropped."""
        oldest = f"{int((time.time() - FEED_RETENTION_SECONDS) * 1000)}-0"
        async with unavailable_on_error():
            await self._redis.xadd(
                feed_key_of(change.customer_id),
                {"e": _encoder.encode(change)},
                minid=oldest,
                approximate=False,
            )
