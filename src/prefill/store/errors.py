"""What the store raises, and the one place where a Redis failure becomes StoreUnavailable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.exceptions


class StoreUnavailable(Exception):
    """Redis could not be reached in time: callers must fail closed."""


class CorruptRecord(Exception):
    """A stored customer record or consent entry that no longer decodes."""


class RequestConflict(Exception):
    """A request id reused for a different request: retrying must repeat the same body."""


@contextlib.asynccontextmanager
async def unavailable_on_error() -> AsyncIterator[None]:
    # Every Redis failure (unreachable, slow, read-only replica, out of memory, loading, a wrong
    # key type) means the same to a caller: state cannot be trusted now, so fail closed.
    try:
        yield
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
        # A cluster's own errors (no node for a slot, no nodes reachable at all) are not
        # RedisErrors; they mean the same.
        raise StoreUnavailable(type(exc).__name__) from exc
