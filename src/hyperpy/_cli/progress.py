"""A one-line download progress display for a terminal.

``  42% [########........] 4.2 MiB / 10.0 MiB  1.3 MiB/s  ETA 0:04``, or without
a known total ``4.2 MiB  1.3 MiB/s``. Redrawn at most ten times a second, so a
fast download spends nothing on it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

INTERVAL = 0.1  # seconds between redraws, at least
RATE_WINDOW = 3.0  # the rate is measured over the last few seconds
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


class Progress:
    """Tracks bytes received toward ``total`` (None: unknown) and draws on ``out``."""

    def __init__(
        self,
        out: TextIO,
        total: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        width: int | None = None,
    ) -> None:
        self.out = out
        self.total = total
        self.received = 0
        self._clock = clock
        self._width = width
        self._started = clock()
        self._drawn_at: float | None = None
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])

    def advance(self, count: int) -> None:
        """``count`` more bytes arrived; redraw if the last drawing is old enough."""
        self.received += count
        now = self._clock()
        if self._drawn_at is None or now - self._drawn_at >= INTERVAL:
            self._draw(now)

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw(self._clock())
        self.out.write("\n")
        self.out.flush()

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        self._samples.append((now, self.received))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        # \r back to the line's start, \x1b[K clears what a longer line left.
        self.out.write("\r" + self.render(now) + "\x1b[K")
        self.out.flush()

    def rate(self, now: float) -> float | None:
        """Bytes per second over the last few seconds; None before any time passed."""
        first_at, first_count = self._samples[0]
        elapsed = now - first_at
        if elapsed <= 0:
            return None
        return (self.received - first_count) / elapsed

    def render(self, now: float) -> str:
        """The line as it stands at ``now``."""
        rate = self.rate(now)
        speed = f"{size(int(rate))}/s" if rate is not None else "--/s"
        if not self.total:
            return f"{size(self.received)}  {speed}"
        fraction = min(1.0, self.received / self.total)
        if self.received >= self.total:
            eta = f"in {duration(now - self._started)}"
        elif rate:
            eta = f"ETA {duration((self.total - self.received) / rate)}"
        else:
            eta = "ETA --:--"
        numbers = f"{size(self.received)} / {size(self.total)}  {speed}  {eta}"
        # Room left for the longest numbers, so the bar keeps its width as they change.
        bar_width = max(10, min(40, self._columns() - 60))
        filled = int(fraction * bar_width)
        bar = "#" * filled + "." * (bar_width - filled)
        return f"{fraction * 100:4.0f}% [{bar}] {numbers}"

    def _columns(self) -> int:
        if self._width is not None:
            return self._width
        try:
            columns = os.get_terminal_size(self.out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            columns = 0
        return columns or 80  # a terminal whose size was never set says 0


def size(count: int) -> str:
    """``count`` bytes for a person: 512 B, 1.5 KiB, 12.3 MiB."""
    value = float(count)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """``seconds`` as m:ss or h:mm:ss."""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
