"""Progress of a long command for the person running it: rows, rate and time left.

At a terminal, one line redrawn in place with a bar; in a log or a pipe (not a TTY), a plain line
every few seconds, which a log keeps readable (click's bar prints nothing there). The figures
come from the caller: rows done, and the fraction of the input read when its size is known.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24
TTY_INTERVAL_SECONDS = 0.2
PLAIN_INTERVAL_SECONDS = 10.0


def clock_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def status_line(label: str, rows: int, fraction: float | None, elapsed: float, bar: bool) -> str:
    """`label [bar] 45% 450,000 rows 31,250 rows/s ETA 0:00:17`; the percentage and ETA only
    when the fraction is known, the bar only at a terminal."""
    rate = rows / elapsed if elapsed > 0 else 0.0
    parts = [label]
    if fraction is not None:
        fraction = min(max(fraction, 0.0), 1.0)
        if bar:
            filled = round(fraction * BAR_WIDTH)
            parts.append("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
        parts.append(f"{fraction:4.0%}")
    parts += [f"{rows:,} rows", f"{rate:,.0f} rows/s"]
    if fraction is not None and 0 < fraction < 1:
        parts.append(f"ETA {clock_text(elapsed * (1 - fraction) / fraction)}")
    elif fraction is None or fraction >= 1:
        parts.append(f"in {clock_text(elapsed)}")
    return " ".join(parts)


class Progress:
    def __init__(
        self,
        label: str,
        stream: TextIO,
        fraction: Callable[[], float | None] = lambda: None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._stream = stream
        self._fraction = fraction
        self._tty = stream.isatty()
        self._interval = interval or (TTY_INTERVAL_SECONDS if self._tty else PLAIN_INTERVAL_SECONDS)
        self._clock = clock
        self._start = clock()
        self._shown_at = self._start
        self._rows = 0

    def update(self, rows: int) -> None:
        """`rows` done so far; shown if the last line is old enough."""
        self._rows = rows
        now = self._clock()
        if now - self._shown_at >= self._interval:
            self._show(now, final=False)

    def note(self, message: str, out: TextIO | None = None) -> None:
        """A line of its own (on `out`, standard error by default) that the bar at a terminal
        neither runs into nor covers: the bar is cleared first and drawn again after."""
        if self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
        target = out or self._stream
        target.write(message + "\n")
        target.flush()
        if self._tty and self._rows:
            self._show(self._clock(), final=False)

    def finish(self) -> None:
        """The last figures, on a line of their own."""
        self._show(self._clock(), final=True)

    def _show(self, now: float, final: bool) -> None:
        self._shown_at = now
        fraction = 1.0 if final and self._fraction() is not None else self._fraction()
        line = status_line(self._label, self._rows, fraction, now - self._start, self._tty)
        if self._tty:
            # Clear to the end of the line: the new text may be shorter than the last.
            self._stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
