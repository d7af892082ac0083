"""The main job: both servers, both clients, one table.

Serves the built-in demo app twice on loopback ports picked by the OS: the
blocking ``hyperpy.Server`` (handlers in threads) and the trio
``hyperpy.AsyncServer`` (run by ``trio.run`` in a thread of its own). Then each
client, the blocking ``hyperpy.Client`` and ``hyperpy.AsyncClient`` under trio,
sends ``GET /``, ``POST /echo`` and ``GET /bytes/100000`` to each server and checks
the answers. Prints one row per exchange and exits 0 when every one succeeded,
1 otherwise. Offline, loopback only, and bounded in time (60 s at most).

    python scripts/demo.py
"""

from __future__ import annotations

import faulthandler
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

import hyperpy
from hyperpy._async import demo as async_demo
from hyperpy._sync import demo as sync_demo

TIMEOUT = hyperpy.Timeout(5.0)
DEADLINE = 60  # seconds for the whole run: past it, dump the stacks and exit 1
ECHO_BODY = os.urandom(16 * 1024)
BYTES = 100_000


@dataclass
class Check:
    method: str
    path: str
    content: bytes | None
    expected: bytes | None  # the exact body expected, or None for "BYTES bytes"

    def verify(self, status: int, body: bytes) -> str:
        """'' when the answer is right, else what is wrong with it."""
        if status != 200:
            return f"status {status}"
        if self.expected is not None and body != self.expected:
            return f"unexpected body {body[:40]!r}"
        if self.expected is None and body != b"x" * BYTES:
            return f"expected {BYTES} bytes of x, got {len(body)}"
        return ""


CHECKS = [
    Check("GET", "/", None, b"Hello, world!"),
    Check("POST", "/echo", ECHO_BODY, ECHO_BODY),
    Check("GET", f"/bytes/{BYTES}", None, None),
]


@dataclass
class Row:
    server: str
    client: str
    check: Check
    status: int | None = None
    size: int = 0
    ms: float = 0.0
    problem: str = ""


# -- servers --------------------------------------------------------------------------


class TrioServerThread:
    """An AsyncServer running under ``trio.run`` in a thread, stoppable from outside."""

    def __init__(self) -> None:
        self.server = hyperpy.AsyncServer(async_demo.app, host="127.0.0.1", port=0)
        self._ready: queue.Queue[BaseException | trio.lowlevel.TrioToken] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="trio-server", daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None

    def start(self) -> str:
        self._thread.start()
        token = self._ready.get(timeout=10)
        if isinstance(token, BaseException):
            raise token
        self._token = token
        return self.server.url

    def _run(self) -> None:
        async def main() -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.server.serve)
                self._ready.put(trio.lowlevel.current_trio_token())

        try:
            trio.run(main)
        except BaseException as exc:
            self._ready.put(exc)
            raise

    def stop(self) -> None:
        if self._token is None:
            return
        trio.from_thread.run(self.server.shutdown, 5.0, trio_token=self._token)
        self._thread.join(10)


# -- clients --------------------------------------------------------------------------


def run_sync_client(base: str, server: str) -> list[Row]:
    rows = []
    with hyperpy.Client(timeout=TIMEOUT) as client:
        for check in CHECKS:
            row = Row(server, "Client", check)
            start = time.perf_counter()
            try:
                response = client.request(check.method, base + check.path, content=check.content)
                row.status, row.size = response.status, len(response.content)
                row.problem = check.verify(response.status, response.content)
            except hyperpy.HTTPError as exc:
                row.problem = f"{type(exc).__name__}: {exc}"
            row.ms = (time.perf_counter() - start) * 1000
            rows.append(row)
    return rows


def run_async_client(base: str, server: str) -> list[Row]:
    async def main() -> list[Row]:
        rows = []
        async with hyperpy.AsyncClient(timeout=TIMEOUT) as client:
            for check in CHECKS:
                row = Row(server, "AsyncClient", check)
                start = time.perf_counter()
                try:
                    response = await client.request(
                        check.method, base + check.path, content=check.content
                    )
                    row.status, row.size = response.status, len(response.content)
                    row.problem = check.verify(response.status, response.content)
                except hyperpy.HTTPError as exc:
                    row.problem = f"{type(exc).__name__}: {exc}"
                row.ms = (time.perf_counter() - start) * 1000
                rows.append(row)
        return rows

    return trio.run(main)


CLIENTS: list[tuple[str, Callable[[str, str], list[Row]]]] = [
    ("Client", run_sync_client),
    ("AsyncClient", run_async_client),
]


def print_table(rows: list[Row]) -> None:
    header = ("server", "client", "request", "status", "bytes", "ms", "result")
    table = [
        (
            r.server,
            r.client,
            f"{r.check.method} {r.check.path}",
            "-" if r.status is None else str(r.status),
            str(r.size),
            f"{r.ms:.1f}",
            "ok" if not r.problem else f"FAIL ({r.problem})",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    right = {3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for cells in table:
        print(line(cells))


def main() -> int:
    faulthandler.dump_traceback_later(DEADLINE, exit=True)
    print(f"hyperpy {hyperpy.__version__} demo: both servers x both clients, loopback only\n")
    sync_server = hyperpy.Server(sync_demo.app, host="127.0.0.1", port=0)
    sync_server.start()
    trio_server = TrioServerThread()
    rows: list[Row] = []
    try:
        trio_url = trio_server.start()
        servers: list[tuple[str, str]] = [
            ("Server (threads)", sync_server.url),
            ("AsyncServer (trio)", trio_url),
        ]
        for server_name, url in servers:
            print(f"{server_name:<20} {url}")
        print()
        for server_name, url in servers:
            for _, run_client in CLIENTS:
                rows.extend(run_client(url, server_name))
    finally:
        sync_server.stop(grace=5.0)
        trio_server.stop()
    print_table(rows)
    failed = [r for r in rows if r.problem]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} exchanges succeeded")
    faulthandler.cancel_dump_traceback_later()
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
