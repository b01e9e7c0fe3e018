"""Health: can Redis take a write now, and would it keep one through a crash."""

from __future__ import annotations

import redis.exceptions

from prefill.store.base import StoreBase
from prefill.store.errors import unavailable_on_error
from prefill.store.keys import HEALTH_PROBE


class HealthStore(StoreBase):
    async def check_writable(self) -> None:
        """Raises StoreUnavailable unless Redis accepts a write (a read-only replica does not)."""
        async with unavailable_on_error():
            await self._redis.set(HEALTH_PROBE, b"1", ex=60)

    async def durability_problem(self) -> str | None:
        """Why an acknowledged write could be lost in a crash, if the server says so; None
        when it fsyncs every write (or does not let us look: managed Redis often forbids
        CONFIG, and its operator then answers for durability)."""
        try:
            config = await self._redis.config_get("append*")
        except redis.exceptions.RedisError:
            return None
        appendonly, appendfsync = config.get("appendonly"), config.get("appendfsync")
        if appendonly == "yes" and appendfsync == "always":
            return None
        return f"appendonly={appendonly!r} appendfsync={appendfsync!r}"
