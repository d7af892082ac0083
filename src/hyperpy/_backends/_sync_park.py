"""How the blocking server keeps idle connections from holding threads.

A trio task waiting for a connection's next request costs a few kilobytes; a
thread blocked on it costs a thread, and with hundreds of them the runnable
ones fight over the GIL and the latency tail grows. So the blocking world
*parks* an idle connection: its thread gives it up and returns. On Linux the
parked sockets sit armed in one epoll set that a bounded, reused pool of worker
threads waits on, so the kernel hands a readable connection straight to a worker
(``_EpollParker``); elsewhere one selector thread watches them and hands them to
a worker pool (``_SelectorParker``). Idle deadlines are a timer's.

The trio twins (``_trio.AsyncParker``, ``_trio.AsyncWorkerPool``) never park:
their tasks simply wait.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import select
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    __slots__ = ("args", "deadline", "done", "fd", "fn", "inline", "start", "stream")

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
        self.inline = False


class _EpollParker:
    """Parks connections in an epoll set that its own worker threads wait on.

    Each parked socket is armed one-shot: when it turns readable (or is closed from
    another thread) the kernel wakes exactly one waiting worker, which runs the
    connection's work itself and, once that parks again, goes back to waiting. No
    thread stands between a readable socket and the worker that serves it, so a
    request costs no extra thread switch nor GIL handoff, and re-arming is one
    ``epoll_ctl`` from the thread that parks. A timer thread resumes connections
    whose deadline passes, through ``start``. At most ``max_workers`` workers run;
    beyond them, readable connections wait their turn in the kernel's ready list.
    """

    parks = True

    _IDLE_EXIT = 30.0  # seconds a worker waits for a readable connection before it ends
    _MASK = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "EPOLLONESHOT") else 0

    def __init__(
        self, spawn: Starter, max_workers: int = 64, offload: Starter | None = None
    ) -> None:
        self._spawn = spawn
        self._offload = offload or spawn  # runs deadline-resumed work off the timer thread
        self._max = max(1, max_workers)
        self._epoll = select.epoll()
        self._lock = threading.Lock()
        self._timer = threading.Condition(self._lock)
        self._parked: dict[int, _Parked] = {}  # armed descriptors and their work
        # One deadline per parked descriptor in the heap at most: a re-parked
        # connection's later deadline is pushed only when its earlier one comes up.
        self._deadlines: list[tuple[float, int]] = []  # (due, fd), a heap
        self._due: dict[int, float] = {}  # fd -> its entry in the heap
        self._timer_at = float("inf")  # when the timer thread wakes next
        self._workers = 0
        self._waiting = 0  # workers blocked in epoll_wait
        self._closed = False
        self._timing = True  # the timer thread runs: the last of them frees the set
        # Written once, at close: level-triggered, so that every worker wakes.
        self._stop_r, self._stop_w = os.pipe()
        self._epoll.register(self._stop_r, select.EPOLLIN)
        spawn(self._watch_deadlines)

    def park(
        self,
        stream: Any,
        deadline: float | None,
        start: Starter | None,
        fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Give up the thread: ``start(fn, *args)`` runs once ``stream`` is readable
        or ``deadline`` (monotonic seconds) has passed. With ``start`` None, a
        readable stream's ``fn`` runs right on the worker that saw it, and a due one's
        through ``offload``."""
        entry = _Parked(stream, deadline, start or self._offload, fn, args)
        entry.inline = start is None
        if not hasattr(stream, "watch"):
            self._spawn(_watch_alone, entry)
            return
        fd = stream.watch()
        if fd is None:  # closed meanwhile
            entry.start(fn, *args)
            return
        entry.fd = fd
        with self._lock:
            if self._closed:
                stream.unwatch()
                closed = True
            else:
                closed = False
                self._parked[fd] = entry
                if deadline is not None and self._due.get(fd, deadline + 1.0) > deadline:
                    self._due[fd] = deadline
                    heapq.heappush(self._deadlines, (deadline, fd))
                    if deadline < self._timer_at:
                        self._timer.notify()
                grow = self._waiting == 0 and self._workers < self._max
                if grow:
                    self._workers += 1
        if closed:
            entry.start(fn, *args)
            return
        try:
            self._epoll.modify(fd, self._MASK)
        except FileNotFoundError:  # first parked, or its earlier socket was closed
            self._epoll.register(fd, self._MASK)
        if grow:
            self._spawn(self._work)

    def _take(self, fd: int) -> _Parked | None:
        """The work parked on ``fd``, no longer parked (None: taken already). Lock held."""
        entry = self._parked.pop(fd, None)
        if entry is not None:
            entry.done = True
        return entry

    def _work(self) -> None:
        poll = self._epoll.poll
        stop = self._stop_r
        while True:
            with self._lock:
                if self._closed:
                    self._workers -= 1
                    self._free_if_last()
                    return
                self._waiting += 1
            try:
                events = poll(self._IDLE_EXIT, 1)
            except (OSError, ValueError):  # closed: the loop's next turn ends
                events = []
            with self._lock:
                self._waiting -= 1
                if not events or events[0][0] == stop:
                    if not events and not self._closed and self._waiting:
                        self._workers -= 1  # idle: others still wait, this one ends
                        return
                    continue
                entry = self._take(events[0][0])
                # Leader and followers: a worker leaving to serve makes sure another
                # waits, while connections stay parked, so that a burst after a
                # quiet spell is not served one by one.
                grow = (
                    entry is not None
                    and self._parked
                    and not self._waiting
                    and self._workers < self._max
                )
                if grow:
                    self._workers += 1
            if grow:
                self._spawn(self._work)
            if entry is None:
                continue  # resumed by its deadline meanwhile
            entry.stream.unwatch()
            try:
                if entry.inline:
                    entry.fn(*entry.args)
                else:
                    entry.start(entry.fn, *entry.args)
            except Exception:  # the work's owner handles its own errors: a bug if here
                logger.exception("work on a server thread failed")

    def _watch_deadlines(self) -> None:
        heap = self._deadlines
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                due: list[_Parked] = []
                while heap and heap[0][0] <= now:
                    at, fd = heapq.heappop(heap)
                    if self._due.get(fd) != at:
                        continue  # superseded by an earlier deadline for the same fd
                    entry = self._parked.get(fd)
                    if entry is None:
                        del self._due[fd]
                    elif entry.deadline is not None and entry.deadline > now:
                        self._due[fd] = entry.deadline  # re-parked since: its own turn
                        heapq.heappush(heap, (entry.deadline, fd))
                    else:
                        del self._due[fd]
                        due.append(self._take(fd))  # type: ignore[arg-type]
                if due:
                    self._lock.release()
                    try:
                        for entry in due:
                            entry.stream.unwatch()
                            entry.start(entry.fn, *entry.args)
                    finally:
                        self._lock.acquire()
                    continue
                self._timer_at = heap[0][0] if heap else float("inf")
                self._timer.wait(None if not heap else max(0.0, heap[0][0] - now))
            self._timing = False
            self._free_if_last()

    def _free_if_last(self) -> None:
        """Once closed and neither a worker nor the timer is left: free the epoll set
        and the pipe. Lock held."""
        if self._closed and not self._timing and not self._workers:
            self._epoll.close()
            os.close(self._stop_r)
            os.close(self._stop_w)

    def close(self) -> None:
        """Stop watching; whatever is parked resumes now, through its ``start``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            left = [self._take(fd) for fd in list(self._parked)]
            self._timer.notify()
            os.write(self._stop_w, b"\0")  # before the last thread out frees the pipe
        for entry in left:
            assert entry is not None
            entry.stream.unwatch()
            entry.start(entry.fn, *entry.args)


def _watch_alone(entry: _Parked) -> None:
    """A stream without a socket (the memory network): a thread of its own waits."""
    left = None if entry.deadline is None else max(0.0, entry.deadline - time.monotonic())
    entry.stream.wait_readable(left)
    entry.start(entry.fn, *entry.args)


class _SelectorParker:
    """Where epoll is missing: watches parked connections on one selector thread and
    resumes each (with ``start``) when it is readable, closed, or due.

    A socket stays open while watched (``stream.watch()``): closing the stream
    from another thread makes it readable, so its work resumes, finds it closed,
    and ends. Streams without a socket (the memory network) are watched by a
    thread of their own instead.
    """

    parks = True

    def __init__(
        self, spawn: Starter, max_workers: int = 64, offload: Starter | None = None
    ) -> None:
        self._spawn = spawn
        self._offload = offload or spawn
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
        start: Starter | None,
        fn: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Give up the thread: ``start(fn, *args)`` (``offload`` if None) runs once
        ``stream`` is readable or ``deadline`` (monotonic seconds) has passed."""
        start = start or self._offload
        entry = _Parked(stream, deadline, start, fn, args)
        if not hasattr(stream, "watch"):
            self._spawn(_watch_alone, entry)
            return
        with self._lock:
            if not self._closed:
                self._incoming.append(entry)
                os.write(self._wake_w, b"\0")
                return
        start(fn, *args)

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


if TYPE_CHECKING or hasattr(select, "epoll"):  # noqa: SIM108 (mypy: one type)
    SyncParker = _EpollParker
else:  # no epoll (macOS, Windows): one selector thread
    SyncParker = _SelectorParker  # type: ignore[misc]
