"""Bulk runs (imports and mints): which ids a run has seen, kept in Redis, not in memory."""

from __future__ import annotations

from redis.typing import EncodableT

from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import run_seen_key
from prefill.store.scripts import ScriptCall

RUN_RETENTION_SECONDS = 86_400
"""An import or mint that dies midway leaves its `seen` hash for at most a day."""


class RunStore(StoreBase):
    async def first_seen(self, run_id: str, rows: list[tuple[str, int]]) -> dict[int, int]:
        """Remember each (id, line) of a run; for the lines whose id the run saw before, the
        line it was first seen on. Kept in Redis, so a run's memory stays constant however
        many ids it sees."""
        if not rows:
            return {}
        args: list[EncodableT] = [RUN_RETENTION_SECONDS]
        for customer_id, line in rows:
            args += [customer_id, line]
        call = ScriptCall(self._scripts.first_seen, [run_seen_key(run_id)], args)
        (repeated,) = await self._run_scripts([call])  # packed by hiredis on one Redis
        pairs = iter(repeated)
        return {int(line): int(first) for line, first in zip(pairs, pairs, strict=True)}

    async def end_run(self, run_id: str) -> None:
        async with unavailable_on_error():
            await self._redis.delete(run_seen_key(run_id))
