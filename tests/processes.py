"""Helpers for tests that run a program of another project as a peer (nginx,
nghttpd, tinyproxy, ...): a free loopback port, whether it accepts yet, and a
bounded stop."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """A loopback TCP port nothing listens on (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(
    process: subprocess.Popen[bytes], first: int = signal.SIGTERM, timeout: float = 5.0
) -> None:
    """``first`` (nginx's graceful stop is SIGQUIT), then SIGTERM, then SIGKILL,
    each waited on for at most ``timeout`` seconds."""
    for sig in dict.fromkeys((first, signal.SIGTERM, signal.SIGKILL)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)


def started(
    process: subprocess.Popen[bytes],
    ports: list[int],
    timeout: float,
    first: int = signal.SIGTERM,
) -> bool:
    """Wait until ``process`` accepts on every port: True. False when it exited or
    ``timeout`` passed (it is stopped then); stopped too if the wait is interrupted
    (a test timeout, Ctrl-C), so that no peer outlives its test."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            if all(accepts(port) for port in ports):
                return True
            time.sleep(0.05)
    except BaseException:
        stop(process, first)
        raise
    stop(process, first)
    return False
