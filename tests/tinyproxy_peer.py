"""A real HTTP forward proxy for the integration tests: Debian's ``tinyproxy``.

::

    with tinyproxy() as proxy_url:
        client.get("http://127.0.0.1:8000/x", proxy=proxy_url)

It runs in the foreground (``-d``) on a loopback port with a configuration of its
own in a temporary directory, log and pid file included. The configuration has
no ``ConnectPort`` line: tinyproxy then allows CONNECT to every port (with any
``ConnectPort`` line it allows only the ports listed and answers 403 to the
others), and the test servers listen on random high ports.

Without the binary the tests that need it are skipped, except in CI (``CI=true``)
where they fail, so that a missing install step cannot go unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import accepts, free_port, stop

START_TIMEOUT = 5.0
STOP_TIMEOUT = 3.0
# A random free port may be taken by someone else before tinyproxy binds it.
START_ATTEMPTS = 3

CONFIG = """\
Port {port}
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 60
MaxClients 50
LogLevel Info
LogFile "{log}"
PidFile "{pid}"
"""


def _start(directory: Path, binary: str, port: int) -> subprocess.Popen[bytes] | None:
    """tinyproxy listening on ``port``; None if it exited without listening."""
    config = directory / "tinyproxy.conf"
    config.write_text(
        CONFIG.format(port=port, log=directory / "tinyproxy.log", pid=directory / "tinyproxy.pid")
    )
    # Its output (before the log file is open) goes to a file: a pipe nobody reads could fill.
    with open(directory / "output.txt", "ab") as output:
        process = subprocess.Popen(
            [binary, "-d", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        # Re-check after connecting: the port might belong to another program.
        if accepts(port) and process.poll() is None:
            return process
        time.sleep(0.05)
    stop(process, timeout=STOP_TIMEOUT)
    return None


def _diagnostics(directory: Path) -> str:
    parts = []
    for name in ("output.txt", "tinyproxy.log"):
        path = directory / name
        if path.exists():
            parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


@contextlib.contextmanager
def tinyproxy(port: int | None = None) -> Iterator[str]:
    """Run tinyproxy on ``port`` (a free one if None); yield its URL, ``http://127.0.0.1:PORT``."""
    binary = shutil.which("tinyproxy")
    if binary is None:
        message = "tinyproxy not installed (apt-get install tinyproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with tempfile.TemporaryDirectory(prefix="tinyproxy-") as name:
        directory = Path(name)
        attempts = 1 if port is not None else START_ATTEMPTS
        process = None
        chosen = 0
        for _ in range(attempts):
            chosen = port if port is not None else free_port()
            process = _start(directory, binary, chosen)
            if process is not None:
                break
        if process is None:
            pytest.fail(
                f"tinyproxy did not start on 127.0.0.1:{chosen}\n{_diagnostics(directory)}",
                pytrace=False,
            )
        try:
            yield f"http://127.0.0.1:{chosen}"
        finally:
            stop(process, timeout=STOP_TIMEOUT)
