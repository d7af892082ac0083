"""How the blocking server keeps idle connections from holding threads.

A trio task waiting for a connection's next request costs a few kilobytes; a
thread blocked on it costs a thread, and with hundreds of them the runnable
ones fight over the GIL and the latency tail grows. So the blocking world
*parks* an idle connection: its thread gives it up and returns, one selector
thread watches every parked socket, and when one becomes readable (or its idle
deadline passes) its work resumes on a bounded, reused pool of worker threads.

The trio twins (``_trio.AsyncParker``, ``_trio.AsyncWorkerPool``) never park:
their tasks simply wait.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("hyperpy.server")

Starter = Callable[..., None]


class SyncWorkerPool:
    """Runs work on at most ``max_workers`` threads, started as needed and reused;
    work beyond them waits its turn in a queue. A thread idle for a while ends."""

    _IDLE_EXIT = 30.0  # seconds a worker waits for work before it ends

    def __init__(self, spawn: Starter, max_workers: int) -> None:
        self._spawn = spawn  # starts a thread that the owner's task group joins
        self._max = max(1, max_workers)
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._cond = threading.Condition()
        self._workers = 0
        self._idle = 0
        self._closed = False

    def start_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker."""
        with self._cond:
            self._jobs.append((fn, args))
            if self._idle:
                self._cond.notify()
                return
            if self._workers >= self._max:
                return  # queued: the next free worker takes it
            self._workers += 1
        self._spawn(self._work)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._idle += 1
                    woken = self._cond.wait(self._IDLE_EXIT)
                    self._idle -= 1
                    if not woken and not self._jobs:
                        break
                if not self._jobs:
                    self._workers -= 1
                    return
                fn, args = self._jobs.popleft()
            try:
                fn(*args)
            except Exception:  # the work's owner handles its own errors: a bug if here
                logger.exception("work on a server thread failed")

    def close(self) -> None:
        """Let the workers end once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Parked:
    __slots__ = ("args", "deadline", "done", "fd", "fn", "start", "stream")

    def __init__(
        self,
        stream: Any,
        deadline: float | None,
        start: Starter,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self.stream = stream
        self.deadline = deadline
        self.start = start
        self.fn = fn
        self.args = args
        self.fd: int | None = None
        self.done = False


class SyncParker:
    """Watches parked connections on one selector thread; resumes each when it is
    readable, closed, or its deadline has passed.

    A socket stays open while watched (``stream.watch()``): closing the stream
    from another thread makes it readable, so its work resumes, finds it closed,
    and ends. Streams without a socket (the memory network) are watched by a
    thread of their own instead.
    """

    parks = True

    def __init__(self, spawn: Starter) -> None:
        self._spawn = spawn
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._incoming: list[_Parked] = []  # parked by other threads, to register
        self._deadlines: list[tuple[float, int, _Parked]] = []  # heap
        self._order = itertools.count()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        spawn(self._loop)

    def park(
        self,
        stream: Any,
        deadline: float | None,
        start: Starter,
        fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Give up the thread: ``start(fn, *args)`` runs once ``stream`` is readable
        or ``deadline`` (monotonic seconds) has passed."""
        entry = _Parked(stream, deadline, start, fn, args)
        if not hasattr(stream, "watch"):
            self._spawn(self._watch_alone, entry)
            return
        with self._lock:
            if not self._closed:
                self._incoming.append(entry)
                os.write(self._wake_w, b"\0")
                return
        start(fn, *args)

    def _watch_alone(self, entry: _Parked) -> None:
        left = None if entry.deadline is None else max(0.0, entry.deadline - time.monotonic())
        entry.stream.wait_readable(left)
        entry.start(entry.fn, *entry.args)

    def _loop(self) -> None:
        try:
            while True:
                timeout = None
                if self._deadlines:
                    timeout = max(0.0, self._deadlines[0][0] - time.monotonic())
                ready = self._selector.select(timeout)
                # Drain the wake-up pipe before reading what it announced: a wake-up
                # written after this read is then seen by the next select, never lost.
                try:
                    os.read(self._wake_r, 4096)
                except BlockingIOError:
                    pass
                with self._lock:
                    incoming, self._incoming = self._incoming, []
                    closed = self._closed
                for entry in incoming:
                    self._register(entry)
                if closed:
                    break
                for key, _ in ready:
                    if key.fd != self._wake_r:
                        self._resume(key.data)
                now = time.monotonic()
                while self._deadlines and self._deadlines[0][0] <= now:
                    self._resume(heapq.heappop(self._deadlines)[2])
        finally:
            # Closing: everything still parked resumes, so that its owner ends it.
            for key in list(self._selector.get_map().values()):
                if key.fd != self._wake_r:
                    self._resume(key.data)
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _register(self, entry: _Parked) -> None:
        fd = entry.stream.watch()
        if fd is None:  # closed meanwhile
            entry.done = True
            entry.start(entry.fn, *entry.args)
            return
        entry.fd = fd
        self._selector.register(fd, selectors.EVENT_READ, entry)
        if entry.deadline is not None:
            heapq.heappush(self._deadlines, (entry.deadline, next(self._order), entry))

    def _resume(self, entry: _Parked) -> None:
        if entry.done:
            return  # resumed already (readable, then its deadline came up)
        entry.done = True
        if entry.fd is not None:
            self._selector.unregister(entry.fd)
            entry.stream.unwatch()
        entry.start(entry.fn, *entry.args)

    def close(self) -> None:
        """Stop watching; whatever is parked resumes now."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.write(self._wake_w, b"\0")
