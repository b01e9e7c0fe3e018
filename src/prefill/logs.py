"""Process-wide logging: one JSON object per line, through structlog, for every logger.

The service and its libraries (uvicorn, redis-py, Litestar) log through the standard library;
structlog's ProcessorFormatter renders their records, and structlog's own loggers, the same way,
with the request id bound for the current request. Only a fixed set of structured fields is
admitted, and exceptions are reduced to their type and frames: an exception's message or a
library's `extra` can carry a personal value, and a log line must never.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

STRUCTURED_FIELDS = ("method", "route", "status", "duration_ms")
"""The `extra` fields a standard-library record may add to its line (the access log's)."""


def exception_type_only(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """Replace `exc_info` with the exception's type and where it was raised: no message, no
    locals (a `KeyError` or a validation error names the value it choked on)."""
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        event["exception"] = exc_info[0].__name__
        frames = traceback.extract_tb(exc_info[2])
        event["frames"] = [f"{frame.filename}:{frame.lineno} {frame.name}" for frame in frames]
    return event


REQUEST_ID: ContextVar[str] = ContextVar("prefill_request_id")
"""The id of the request being answered (web/requests.py): set and reset per request, one
variable, where structlog's bind_contextvars makes and tracks one per key."""


def add_request_id(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """The request's id on every line logged while it is answered."""
    request_id = REQUEST_ID.get(None)
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    add_request_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    exception_type_only,
]
"""For structlog's loggers and the standard library's records alike."""


def _json_line(event: EventDict, default: Callable[[Any], Any]) -> str:
    """structlog's JSONRenderer with msgspec instead of the json module: the same object, in a
    few times less time (every request writes a line)."""
    return msgspec.json.encode(event, enc_hook=default).decode()


class AccessLine(msgspec.Struct, kw_only=True):
    """A request's access line as a record's message (web/requests.py): `JSONFormatter` encodes
    it in one step, in the order and with the fields structlog's chain gives other lines."""

    event: str = "request"
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str
    level: str = ""
    logger: str = ""
    timestamp: str = ""

    def __str__(self) -> str:
        return self.event  # What a plain formatter elsewhere shows.


class JSONFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with an access line encoded directly: it is one line per request
    (a widget request spent about a twentieth of its CPU in the processor chain, profiled)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.msg
        if not isinstance(line, AccessLine):
            return super().format(record)
        return _encoded(line, record.levelname.lower(), record.name, record.created)


def _encoded(line: AccessLine, level: str, logger: str, created: float) -> str:
    line = msgspec.structs.replace(line, level=level, logger=logger, timestamp=_utc(created))
    return msgspec.json.encode(line).decode()


_second: tuple[int, str] = (-1, "")
"""The last second stamped, as ISO 8601 text."""


def _utc(created: float) -> str:
    """`created` in ISO 8601, UTC, to the microsecond ("2026-12-04T16:30:00.123456Z"): the
    second's text made once a second (datetime's fromtimestamp and isoformat cost about five
    µs, for every request's line)."""
    global _second
    second = int(created)
    last = _second  # read once: another thread may stamp meanwhile
    if second != last[0]:
        last = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{last[1]}.{int((created - second) * 1_000_000):06d}Z"


class JSONLineHandler(logging.StreamHandler[TextIO]):
    """The process's one handler (configure_logging). It also takes access lines directly
    (`log_access`), the same text as through `logging`, without a LogRecord and the logger
    and handler machinery around it: every request writes one (about a twentieth of a
    widget request's samples went there, profiled)."""

    def write_access(self, line: AccessLine, logger: str) -> None:
        text = _encoded(line, "info", logger, time.time())
        try:
            with self.lock:  # type: ignore[union-attr]  # made by createLock() in __init__
                self.stream.write(text + self.terminator)
                self.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"name": logger, "msg": line}))


def log_access(logger: logging.Logger, line: AccessLine) -> None:
    """`logger.info(line)`, written straight to the process's JSON handler when that is where
    the record would go and all it would go to (no other handler, level or filter in the way:
    otherwise, as tests and embedders set up, through `logging` itself)."""
    handler = _only_handler(logger)
    if handler is None:
        logger.info(line)
    else:
        handler.write_access(line, logger.name)


def _only_handler(logger: logging.Logger) -> JSONLineHandler | None:
    """The JSONLineHandler that alone would write an INFO record of `logger`, if one would."""
    if logger.disabled or logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    node = logger
    while not node.handlers:
        if not node.propagate or node.parent is None:
            return None  # Nowhere, or logging's last resort: left to `logging`.
        node = node.parent
    if len(node.handlers) != 1 or (node.propagate and node.parent is not None):
        return None  # More than one handler, here or further up.
    handler = node.handlers[0]
    if type(handler) is not JSONLineHandler or handler.filters or handler.level > logging.INFO:
        return None
    return handler


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON lines on `stream` (stderr) for every logger in the process. Call once, at start-up;
    it replaces the root logger's handlers, so uvicorn must get `log_config=None`."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = JSONFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(allow=STRUCTURED_FIELDS), *SHARED],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(serializer=_json_line),
        ],
    )
    handler = JSONLineHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # No line renders a record's thread, process or calling function, and each record
    # would look them up, twice (ProcessorFormatter copies it): the logging HOWTO's
    # "Optimization" switches. Every request writes a line.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "litestar"):
        logging.getLogger(name).handlers.clear()  # Propagate to the root's JSON handler.
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)
