"""Waiting for signals (and child exits) in the main thread, without trio.

The handlers only append to a list; a byte the interpreter writes to a pipe
(``signal.set_wakeup_fd``) wakes the waiter. Nothing a handler does can
deadlock with the code it interrupted, as taking a lock in it could.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterable
from types import FrameType, TracebackType
from typing import Any


class SignalWaiter:
    """Records ``signals`` while entered; ``wait`` returns when one arrived or ``wake``
    was called (from any thread)."""

    def __init__(self, signals: Iterable[int]) -> None:
        self.signals = list(signals)
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1
        self._read = self._write = -1

    def __enter__(self) -> SignalWaiter:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self._read)
        os.close(self._write)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def wait(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for a signal or a ``wake``."""
        if not self.received:
            select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass

    def wake(self) -> None:
        """End a ``wait`` (safe from another thread)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def take(self) -> int | None:
        """The oldest signal not taken yet, or None."""
        return self.received.pop(0) if self.received else None
