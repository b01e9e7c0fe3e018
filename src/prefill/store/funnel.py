"""A campaign's funnel: counters, and HyperLogLogs of salted pseudonyms per stage.

The funnel stores no id: counters, and HyperLogLogs of keyed pseudonyms mixed with a campaign's
salt, which estimate how many distinct people reached a stage and cannot list anyone. While the
salt lives, the holder of the service's keys could test one given person; once it expires
(with the campaign's links), nobody can.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, cast

from prefill.funnel import PEOPLE_STAGES, FunnelUpdate
from prefill.store.base import StoreBase
from prefill.store.keys import FUNNEL_SHARDS, funnel_counts_key, funnel_people_key
from prefill.store.scripts import ScriptCall


class FunnelStore(StoreBase):
    async def count_funnel(self, update: FunnelUpdate) -> None:
        await self._in_one_trip([self._funnel_call(update)])

    async def funnel_counters(
        self, campaign_ids: Iterable[str]
    ) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        """Per campaign: its counters, and the distinct people per stage (estimates), summed
        over the shards (a person is counted in one shard only): one script per shard for
        every campaign, pipelined."""
        ids = list(dict.fromkeys(campaign_ids))
        counts: dict[str, Counter[str]] = {campaign_id: Counter() for campaign_id in ids}
        people: dict[str, Counter[str]] = {campaign_id: Counter() for campaign_id in ids}
        if not ids:
            return {}
        calls = []
        for shard in range(FUNNEL_SHARDS):
            keys = []
            for campaign_id in ids:
                keys.append(funnel_counts_key(campaign_id, shard))
                keys += [funnel_people_key(campaign_id, shard, s) for s in PEOPLE_STAGES]
            calls.append(ScriptCall(self._scripts.read_funnels, keys, [len(PEOPLE_STAGES)]))
        for reply in await self._run_scripts(calls):
            replies = iter(cast("list[Any]", reply))
            for campaign_id in ids:
                raw = cast("list[bytes]", next(replies))
                for field, value in zip(raw[::2], raw[1::2], strict=True):
                    counts[campaign_id][field.decode()] += int(value)
                for stage in PEOPLE_STAGES:
                    people[campaign_id][stage] += int(next(replies))
        return {
            campaign_id: (
                dict(counts[campaign_id]),
                {s: people[campaign_id][s] for s in PEOPLE_STAGES},
            )
            for campaign_id in ids
        }
