"""Process-wide logging: one JSON object per line, through structlog, for every logger.

The service and its libraries (uvicorn, redis-py, Litestar) log through the standard library;
structlog's ProcessorFormatter renders their records, and structlog's own loggers, the same way,
with the request id bound for the current request. Only a fixed set of structured fields is
admitted, and exceptions are reduced to their type and frames: an exception's message or a
library's `extra` can carry a personal value, and a log line must never.
"""

from __future__ import annotations

import codecs
import errno
import io
import logging
import os
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
    """A request's access line as a record's message (web/requests.py): encoded in one step
    (`_access_json`), in the order and with the fields structlog's chain gives other lines,
    the level, logger and time appended."""

    event: str = "request"
    method: str
    route: str
    status: int
    duration_ms: float
    request_id: str

    def __str__(self) -> str:
        return self.event  # What a plain formatter elsewhere shows.


class JSONFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, with an access line encoded directly: it is one line per request
    (a widget request spent about a twentieth of its CPU in the processor chain, profiled)."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.msg
        if not isinstance(line, AccessLine):
            return super().format(record)
        return _access_json(line, record.levelname.lower(), record.name, record.created).decode()


_access_encoder = msgspec.json.Encoder()
_tails: dict[tuple[str, str], bytes] = {}
"""`,"level":…,"logger":…,"timestamp":"` per level and logger: the same on every line."""


def _access_json(
    line: AccessLine, level: str, logger: str, created: float, end: bytes = b""
) -> bytes:
    """The line as JSON, `end` after it: the struct's own fields encoded, the level, logger
    and time (`_utc`'s text) appended as bytes made once (no struct copy, no str round trip)."""
    tail = _tails.get((level, logger))
    if tail is None:
        fields = _access_encoder.encode({"level": level, "logger": logger, "timestamp": ""})
        tail = _tails[(level, logger)] = b"," + fields[1:-2]  # up to the timestamp's quote
    second = int(created)
    last = _second  # read once: another thread may stamp meanwhile
    if second != last[0]:
        last = _stamp_second(second)
    micro = int((created - second) * 1_000_000)
    return b'%b%b%b.%06dZ"}%b' % (_access_encoder.encode(line)[:-1], tail, last[1], micro, end)


_second: tuple[int, bytes] = (-1, b"")
"""The last second stamped, and its ISO 8601 text."""


def _stamp_second(second: int) -> tuple[int, bytes]:
    """`second`'s text, made and kept as the last second stamped."""
    global _second
    _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode())
    return _second


def _utc(created: float) -> str:
    """`created` in ISO 8601, UTC, to the microsecond ("2026-12-04T16:30:00.123456Z"), as an
    access line is stamped: the second's text made once a second (datetime's fromtimestamp
    and isoformat cost about five µs, for every request's line)."""
    second = int(created)
    last = _second  # read once: another thread may stamp meanwhile
    if second != last[0]:
        last = _stamp_second(second)
    return f"{last[1].decode()}.{int((created - second) * 1_000_000):06d}Z"


def _line_file(stream: TextIO) -> io.FileIO | None:
    """The file under the process's own stderr or stdout, for a line to go to it in one write
    of its UTF-8 bytes; None for any other stream (its text layer may translate line ends or
    encode otherwise, as a file opened with `newline=` or an encoding would)."""
    if stream is not sys.__stderr__ and stream is not sys.__stdout__:
        return None
    if type(stream) is not io.TextIOWrapper or os.linesep != "\n":
        return None
    if codecs.lookup(stream.encoding).name != "utf-8":
        return None
    binary = stream.buffer  # a FileIO itself when unbuffered (PYTHONUNBUFFERED, -u)
    raw = binary.raw if type(binary) is io.BufferedWriter else binary
    return raw if type(raw) is io.FileIO else None


class JSONLineHandler(logging.StreamHandler[TextIO]):
    """The process's one handler (configure_logging). It also takes access lines directly
    (`log_access`), the same text as through `logging`, without a LogRecord and the logger
    and handler machinery around it: every request writes one (about a twentieth of a
    widget request's samples went there, profiled)."""

    _direct: tuple[TextIO | None, io.FileIO | None] = (None, None)
    """The stream last written to, and its file when a line may go to it directly."""

    def write_access(self, line: AccessLine, logger: str) -> None:
        try:
            stream = self.stream
            known, file = self._direct
            if known is not stream:
                file = _line_file(stream)
                self._direct = (stream, file)
            if file is None:
                text = _access_json(line, "info", logger, time.time()).decode()
                with self.lock:  # type: ignore[union-attr]  # made by createLock() in __init__
                    stream.write(text + self.terminator)
                    self.flush()
                return
            data = _access_json(line, "info", logger, time.time(), self.terminator.encode())
            # One write, at once, of the bytes the text layer would write (which flushes its
            # own with each line it takes); the lock keeps this handler's lines whole.
            with self.lock:  # type: ignore[union-attr]
                written = file.write(data)
                if written != len(data):
                    _write_rest(file, data, written)
        except Exception:
            self.handleError(logging.makeLogRecord({"name": logger, "msg": line}))


def _write_rest(file: io.FileIO, data: bytes, written: int | None) -> None:
    """What a write cut short (a signal, a full pipe) left of `data`, as a buffered writer
    writes it: on until all is written; a stream that takes nothing now raises."""
    while written is not None and written < len(data):
        data = data[written:]
        written = file.write(data)
    if written is None:
        raise BlockingIOError(errno.EAGAIN, "the log stream takes nothing now")


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
