"""``--reload``: watching ``.py`` files with watchfiles (the ``hyperpy[reload]`` extra)."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .errors import UsageError

logger = logging.getLogger("hyperpy.supervisor")

MISSING = "--reload needs watchfiles: pip install hyperpy[reload]"


def require_watchfiles() -> Any:
    """The watchfiles module; UsageError when it is not installed."""
    try:
        return importlib.import_module("watchfiles")
    except ImportError:
        raise UsageError(MISSING) from None


class ChangeWatcher:
    """Watches ``dirs`` (recursively) in a thread for changed ``.py`` files."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self.dirs = list(dirs)
        self._watchfiles = require_watchfiles()
        chatty = logging.getLogger("watchfiles.main")
        if chatty.level == logging.NOTSET:
            # It says "1 change detected" at INFO; the supervisor says which file.
            chatty.setLevel(logging.WARNING)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self, wake: Callable[[], None]) -> None:
        """Start watching; call ``wake`` (from the watching thread) on each change."""
        self._thread = threading.Thread(
            target=self._watch, args=(wake,), name="hyperpy-reload", daemon=True
        )
        self._thread.start()

    def _watch(self, wake: Callable[[], None]) -> None:
        watchfiles = self._watchfiles
        base = watchfiles.DefaultFilter()  # skips .git, __pycache__, virtualenvs...

        def python_files(change: Any, path: str) -> bool:
            return path.endswith(".py") and bool(base(change, path))

        try:
            for changes in watchfiles.watch(
                *self.dirs,
                watch_filter=python_files,
                stop_event=self._stop,
                raise_interrupt=False,
                debounce=400,
            ):
                with self._lock:
                    self._changed.extend(sorted(path for _, path in changes))
                wake()
        except Exception:
            logger.exception("watching for changes failed: --reload no longer works")

    def take(self) -> list[str]:
        """The paths changed since the last call."""
        with self._lock:
            changed, self._changed = self._changed, []
        return changed

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
