"""A campaign's funnel: counters, and HyperLogLogs of salted pseudonyms per stage.

The funnel stores no id: counters, and HyperLogLogs of keyed pseudonyms mixed with a campaign's
salt, which estimate how many distinct people reached a stage and cannot list anyone. While the
salt lives, the holder of the service's keys could test one given person; once it expires
(with the campaign's links), nobody can.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from prefill.funnel import PEOPLE_STAGES, FunnelUpdate
from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import funnel_counts_key, funnel_people_key


class FunnelStore(StoreBase):
    async def count_funnel(self, update: FunnelUpdate) -> None:
        await self._in_one_trip([self._funnel_call(update)])

    async def funnel_counters(
        self, campaign_ids: Iterable[str]
    ) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """Per campaign: its counters, and the distinct people per stage (estimates)."""
        ids = list(dict.fromkeys(campaign_ids))
        async with unavailable_on_error():
            pipe = self._redis.pipeline(transaction=False)
            for campaign_id in ids:
                pipe.hgetall(funnel_counts_key(campaign_id))
                for stage in PEOPLE_STAGES:
                    # By name: redis-py's cluster pipeline refuses its pfcount (one key's is safe).
                    pipe.execute_command("PFCOUNT", funnel_people_key(campaign_id, stage))
            replies = iter(await pipe.execute())
        result = {}
        for campaign_id in ids:
            raw = cast("dict[bytes, bytes]", next(replies))
            counts = {field.decode(): int(value) for field, value in raw.items()}
            result[campaign_id] = (counts, {stage: int(next(replies)) for stage in PEOPLE_STAGES})
        return result
