"""Running ``python -m hyperpy serve`` as a real process, for the command line tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
STARTUP = 20.0  # seconds a server gets to say where it listens

_SERVING = re.compile(r"hyperpy serving on (\S+)")


class _Lines:
    """Lines read from a pipe by a thread, waited on by the test."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str] | None:
        """The first line matching ``pattern``, waiting up to ``timeout`` seconds."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self._changed.wait(left)

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)


class Served:
    """A ``hyperpy serve`` process: its address, its output, its signals.

    ``url`` is what it announced (``http://host:port`` or ``unix:PATH``). Leaving
    the ``with`` block stops it (SIGTERM, then SIGKILL for its whole group).
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path = REPO,
        env: dict[str, str] | None = None,
        new_session: bool = False,
        wait: bool = True,
    ) -> None:
        environ = dict(os.environ if env is None else env)
        environ["PYTHONUNBUFFERED"] = "1"
        environ.pop("WEB_CONCURRENCY", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hyperpy", "serve", *args],
            cwd=cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = _Lines(self.process.stdout)
        self.stderr = _Lines(self.process.stderr)
        self.new_session = new_session
        self.url = ""
        if wait:
            match = self.stdout.wait_for(_SERVING.pattern, STARTUP)
            if match is None:
                self.kill()
                raise AssertionError(
                    f"the server did not start:\n{self.stdout.text}\n{self.stderr.text}"
                )
            self.url = match.group(1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig``; wait for the exit and the end of the output; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.stdout.join()
        self.stderr.join()
        return status

    def kill(self) -> None:
        if self.new_session:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.stdout.join()
        self.stderr.join()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_until(condition: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``condition()`` until true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
