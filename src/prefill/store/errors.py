"""What the store raises, and the one place where a Redis failure becomes StoreUnavailable."""

from __future__ import annotations

import redis.exceptions

# A cluster's own errors (no node for a slot, no nodes reachable at all) are not RedisErrors;
# they mean the same.
REDIS_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


class StoreUnavailable(Exception):
    """Redis could not be reached in time: callers must fail closed."""

    def failure(self) -> str:
        """What failed, for a log line or an operator: the class of the innermost Redis error,
        else this exception's own message. Never a key or value."""
        found: BaseException | None = None
        inner = self.__cause__ or self.__context__
        while isinstance(inner, REDIS_ERRORS):
            found, inner = inner, inner.__cause__ or inner.__context__
        if found is None:
            return str(self)
        if isinstance(found, redis.exceptions.ConnectionError) and str(found).startswith("Timeout"):
            # redis-py re-raises a timeout in a new connection's handshake (a frozen server)
            # as a ConnectionError that keeps only the timeout's message.
            return redis.exceptions.TimeoutError.__name__
        return type(found).__name__


class CorruptRecord(Exception):
    """A stored customer record or consent entry that no longer decodes."""


class RequestConflict(Exception):
    """A request id reused for a different request: retrying must repeat the same body."""


class _UnavailableOnError:
    """Every Redis failure (unreachable, slow, read-only replica, out of memory, loading, a
    wrong key type) means the same to a caller: state cannot be trusted now, so fail closed.
    A class, not an @asynccontextmanager: that makes an async generator per use, which the
    event loop also tracks, on every read and write of a request."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: object
    ) -> None:
        if isinstance(exc, REDIS_ERRORS):
            raise StoreUnavailable(type(exc).__name__) from exc


_UNAVAILABLE_ON_ERROR = _UnavailableOnError()


def unavailable_on_error() -> _UnavailableOnError:
    """`async with unavailable_on_error():` raises StoreUnavailable for any Redis error."""
    return _UNAVAILABLE_ON_ERROR
