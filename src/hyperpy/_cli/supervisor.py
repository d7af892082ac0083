"""The supervisor: worker processes serving one listening socket it bound.

Each worker is ``python -m hyperpy serve ... --supervised LISTEN_FD:PIPE_FD``:
the same command line, plus the inherited socket (``pass_fds``) to accept on,
so the kernel spreads connections over the workers, and the read end of a pipe
whose write end only the supervisor holds: if the supervisor dies, the pipe
closes and the workers shut down on their own.

A worker that dies is started again, at most ``RESTARTS`` times within
``RESTART_WINDOW`` seconds per slot; past that, or when a worker exits with
status 2 or 3 (it could not load or start the app: starting it again will not
help), the supervisor stops the others and exits with that status. SIGTERM or
SIGINT: each worker gets SIGTERM and drains (``--graceful-timeout``); a second
one stops them at once (with SIGQUIT: a worker takes any number of SIGTERMs as
"drain", since systemd may signal the whole process group as well). SIGHUP replaces every worker
(new ones start before the old ones drain, so the socket is always served);
``--reload`` does the same when a watched file changes.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .reload import ChangeWatcher
from .signals import SignalWaiter

logger = logging.getLogger("hyperpy.supervisor")

RESTARTS = 5
RESTART_WINDOW = 10.0
# Workers exit with these when the app cannot be loaded or started.
FATAL_STATUSES = (2, 3)
# A worker bounds its own drain by --graceful-timeout; this covers the rest of its exit.
KILL_MARGIN = 5.0
TICK = 1.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Slot:
    """One worker position: its current process and its recent restarts."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    restarts: deque[float] = field(default_factory=deque)


class Supervisor:
    """Runs ``count`` workers on ``listener`` until told to stop (see the module doc).

    ``serve_args`` is the ``serve`` command line after ``serve``; ``watcher``, for
    ``--reload``, replaces the workers when files change and waits for a change
    after a worker died instead of restarting it.
    """

    def __init__(
        self,
        serve_args: Sequence[str],
        listener: socket.socket,
        *,
        count: int,
        grace: float,
        watcher: ChangeWatcher | None = None,
    ) -> None:
        self.serve_args = list(serve_args)
        self.listener = listener
        self.grace = grace
        self.watcher = watcher
        self.slots = [_Slot(number) for number in range(count)]
        self.retiring: list[subprocess.Popen[bytes]] = []  # replaced, draining
        self._pipe_read = self._pipe_write = -1
        self._waiter = SignalWaiter(())

    def run(self) -> int:
        """Supervise until a signal or a fatal worker exit; return the exit status."""
        self._pipe_read, self._pipe_write = os.pipe()
        signals = [*_STOP_SIGNALS, signal.SIGHUP, signal.SIGCHLD]
        try:
            with SignalWaiter(signals) as self._waiter:
                if self.watcher is not None:
                    self.watcher.start(self._waiter.wake)
                for slot in self.slots:
                    self._start(slot)
                return self._supervise()
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            os.close(self._pipe_read)
            os.close(self._pipe_write)

    def _supervise(self) -> int:
        while True:
            self._waiter.wait(TICK)
            while (sig := self._waiter.take()) is not None:
                if sig in _STOP_SIGNALS:
                    return self._shutdown(f"{signal.Signals(sig).name} received", 0)
                if sig == signal.SIGHUP:
                    self._replace_all("SIGHUP received")
            if self.watcher is not None:
                changed = self.watcher.take()
                if changed:
                    shown = ", ".join(os.path.relpath(path) for path in changed[:3])
                    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
                    self._replace_all(f"{shown}{more} changed")
            status = self._reap()
            if status is not None:
                return self._shutdown("giving up", status)

    # -- workers ----------------------------------------------------------------------

    def _command(self) -> list[str]:
        fds = f"{self.listener.fileno()}:{self._pipe_read}"
        return [sys.executable, "-m", "hyperpy", "serve", "--supervised", fds, *self.serve_args]

    def _start(self, slot: _Slot) -> None:
        # A worker must never take the terminal's SIGINT, not even while it starts
        # up: it inherits SIGINT blocked, and unblocks it once it ignores it. Here
        # it is only held back for a moment, never lost.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            slot.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                pass_fds=(self.listener.fileno(), self._pipe_read),
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        logger.info("worker %d started (slot %d)", slot.process.pid, slot.number)

    def _replace_all(self, reason: str) -> None:
        logger.info("%s: replacing the workers", reason)
        for slot in self.slots:
            old = slot.process
            self._start(slot)  # first, so the socket is always served
            if old is not None and old.poll() is None:
                _signal(old, signal.SIGTERM)
                self.retiring.append(old)

    def _reap(self) -> int | None:
        """Restart the workers that died; a status to exit with if that must stop."""
        self.retiring = [process for process in self.retiring if process.poll() is None]
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is None:
                continue
            slot.process = None
            ended = f"worker {process.pid} {_ended(process.returncode)}"
            if self.watcher is not None:
                logger.warning("%s: waiting for a file change to start it again", ended)
                continue
            if process.returncode in FATAL_STATUSES:
                logger.error("%s: it cannot load or start the app", ended)
                return process.returncode
            now = time.monotonic()
            while slot.restarts and now - slot.restarts[0] > RESTART_WINDOW:
                slot.restarts.popleft()
            if len(slot.restarts) >= RESTARTS:
                logger.error(
                    "%s: slot %d restarted %d times in %.0f s already",
                    ended,
                    slot.number,
                    RESTARTS,
                    RESTART_WINDOW,
                )
                return 1
            slot.restarts.append(now)
            logger.warning("%s: starting another", ended)
            self._start(slot)
        return None

    def _shutdown(self, reason: str, status: int) -> int:
        """Stop every worker gracefully (each drains); return the exit status."""
        running = [slot.process for slot in self.slots if slot.process is not None]
        running += self.retiring
        running = [process for process in running if process.poll() is None]
        logger.info("%s: stopping %d worker(s) gracefully", reason, len(running))
        for process in running:
            _signal(process, signal.SIGTERM)
        # The workers hold their own copies; this one only kept the socket open for
        # workers to come. Once theirs close too, new connections are refused.
        self.listener.close()
        deadline = time.monotonic() + self.grace + KILL_MARGIN
        while running:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.error("%d worker(s) still running: killing them", len(running))
                for process in running:
                    _signal(process, signal.SIGKILL)
                    process.wait()
                return status or 1
            self._waiter.wait(min(left, TICK))
            while (sig := self._waiter.take()) is not None:
                if sig in _STOP_SIGNALS:
                    # A second stop signal: the workers stop at once. SIGQUIT, not
                    # SIGTERM, which a worker may get twice anyway (systemd signals
                    # the whole process group) and must take as "drain".
                    logger.warning("%s again: stopping at once", signal.Signals(sig).name)
                    for process in running:
                        _signal(process, signal.SIGQUIT)
                    deadline = min(deadline, time.monotonic() + KILL_MARGIN)
                    status = status or 128 + sig
            running = [process for process in running if process.poll() is None]
        logger.info("all workers stopped")
        return status


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass  # it just ended


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
