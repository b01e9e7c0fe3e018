"""Rate limit counters (ratelimit.py is the policy): one per limit and subject, per window."""

from __future__ import annotations

from prefill.ratelimit import Window
from prefill.store.base import RateCount, StoreBase
from prefill.store.errors import unavailable_on_error


class RateStore(StoreBase):
    async def count_rate(self, rate: RateCount) -> Window:
        """Count one request against a limit."""
        (reply,) = await self._in_one_trip([self._rate_call(rate)])
        return Window(*reply)

    async def rate_window(self, rate: RateCount) -> Window:
        """A limit's count so far, counting nothing (0 when no window is open)."""
        key = self._rate_call(rate).keys[0]
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            count, remaining_ms = await pipe.execute()
        return Window(int(count or 0), int(remaining_ms))
