"""A first, rough requests-per-second figure for hyperpy, with peers for scale.

Each server runs in a subprocess of its own (so client and server never share a
GIL) on a loopback port picked here, serving a 13-byte "Hello, world!":

* hyperpy ``Server`` (threads): ``python -m hyperpy serve --sync``
* hyperpy ``AsyncServer`` (trio): ``python -m hyperpy serve``
* hypercorn with its trio worker and an equivalent ASGI app (if installed)

Against each, every client sends ``--requests`` GET / in a row over one kept-alive
connection: hyperpy ``Client`` and ``AsyncClient`` (trio), and if installed
``httpx.Client``, ``httpx.AsyncClient`` (trio) and urllib3. A second table has the
same clients with ``--concurrency`` trio tasks (async) or threads (sync) sharing
one client. Peers come with ``pip install -e ".[bench]"``; missing ones are skipped.

    python scripts/bench.py            # 2000 requests per row
    python scripts/bench.py --quick    # 200 requests per row

Numbers depend on the machine and on what else runs there: compare rows of one
run, not runs on different machines. Every run is bounded (``--budget`` seconds,
after which the servers are killed and the script exits 1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import trio

import hyperpy

TIMEOUT = 10.0  # per IO step, for every client
WARMUP = 20  # requests before the clock starts (connection set-up, imports, caches)
BODY = b"Hello, world!"


# -- servers (subprocesses) -----------------------------------------------------------


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The peer server's app: what hyperpy's demo app answers for GET /."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def run_hypercorn(port: int) -> None:
    """Entry point of the hypercorn subprocess (``bench.py _hypercorn PORT``)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    # hypercorn closes a connection after 1000 requests by default; hyperpy has no such cap.
    config.keep_alive_max_requests = 10**9
    trio.run(serve, asgi_hello, config)  # type: ignore[arg-type]


@dataclass
class ServerSpec:
    name: str
    command: Callable[[int], list[str]]
    available: str = ""  # why it cannot run, if it cannot


def server_specs() -> list[ServerSpec]:
    py = sys.executable
    specs = [
        ServerSpec(
            "hyperpy Server (threads)",
            lambda port: [
                py,
                "-m",
                "hyperpy",
                "serve",
                "--sync",
                "--no-access-log",
                "--port",
                str(port),
            ],
        ),
        ServerSpec(
            "hyperpy AsyncServer (trio)",
            lambda port: [py, "-m", "hyperpy", "serve", "--no-access-log", "--port", str(port)],
        ),
        ServerSpec(
            "hypercorn (trio worker)",
            lambda port: [py, os.path.abspath(__file__), "_hypercorn", str(port)],
        ),
    ]
    if not _installed("hypercorn"):
        specs[2].available = "hypercorn is not installed"
    return specs


def free_port() -> int:
    """A port the OS has just handed out: bind port 0, note the port, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningServer:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            spec.command(self.port),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        LIVE.add(self.proc)

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with status {self.proc.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"not listening after {timeout} s: {self.log()}")

    def log(self) -> str:
        """The last line the server wrote to stderr (where its error usually is)."""
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        LIVE.discard(self.proc)
        self._log.close()


LIVE: set[subprocess.Popen[bytes]] = set()


def start_watchdog(budget: float) -> None:
    """After ``budget`` seconds: kill the server subprocesses and exit 1."""

    def expire() -> None:
        print(f"\nbench: over the {budget:.0f} s budget: stopping", file=sys.stderr, flush=True)
        for proc in list(LIVE):
            with contextlib.suppress(OSError):
                proc.kill()
        os._exit(1)

    timer = threading.Timer(budget, expire)
    timer.daemon = True
    timer.start()


# -- clients --------------------------------------------------------------------------
# Each runner sends n GET requests to url, split over `workers` concurrent tasks or
# threads sharing one client, and returns the number of failed requests.

Runner = Callable[[str, int, int], int]


def _check(status: int, body: bytes) -> int:
    return 0 if status == 200 and body == BODY else 1


def _threads(workers: int, n: int, one: Callable[[], int]) -> int:
    """Run ``one`` n times over ``workers`` threads; the number of failures."""
    if workers == 1:
        return sum(one() for _ in range(n))
    failures = [0] * workers
    errors: list[BaseException] = []

    def work(i: int, count: int) -> None:
        try:
            failures[i] = sum(one() for _ in range(count))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(i, _share(n, workers, i))) for i in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(failures)


async def _tasks(workers: int, n: int, one: Callable[[], Any]) -> int:
    failures = [0] * workers

    async def work(i: int, count: int) -> None:
        for _ in range(count):
            failures[i] += await one()

    async with trio.open_nursery() as nursery:
        for i in range(workers):
            nursery.start_soon(work, i, _share(n, workers, i))
    return sum(failures)


def _share(n: int, workers: int, i: int) -> int:
    return n // workers + (1 if i < n % workers else 0)


@contextlib.contextmanager
def _timed(result: dict[str, float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    result["seconds"] = time.perf_counter() - start


def hyperpy_sync(url: str, n: int, workers: int, timer: dict[str, float]) -> int:
    with hyperpy.Client(timeout=TIMEOUT) as client:

        def one() -> int:
            response = client.get(url)
            return _check(response.status, response.content)

        _threads(1, WARMUP, one)
        with _timed(timer):
            failures = _threads(workers, n, one)
        timer["connections"] = client.connections_opened
        return failures


def hyperpy_async(url: str, n: int, workers: int, timer: dict[str, float]) -> int:
    async def main() -> int:
        async with hyperpy.AsyncClient(timeout=TIMEOUT) as client:

            async def one() -> int:
                response = await client.get(url)
                return _check(response.status, response.content)

            await _tasks(1, WARMUP, one)
            with _timed(timer):
                failures = await _tasks(workers, n, one)
            timer["connections"] = client.connections_opened
            return failures

    return trio.run(main)


def httpx_sync(url: str, n: int, workers: int, timer: dict[str, float]) -> int:
    import httpx

    with httpx.Client(timeout=TIMEOUT) as client:

        def one() -> int:
            response = client.get(url)
            return _check(response.status_code, response.content)

        _threads(1, WARMUP, one)
        with _timed(timer):
            return _threads(workers, n, one)


def httpx_async(url: str, n: int, workers: int, timer: dict[str, float]) -> int:
    import httpx

    async def main() -> int:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:

            async def one() -> int:
                response = await client.get(url)
                return _check(response.status_code, response.content)

            await _tasks(1, WARMUP, one)
            with _timed(timer):
                return await _tasks(workers, n, one)

    return trio.run(main)


def urllib3_sync(url: str, n: int, workers: int, timer: dict[str, float]) -> int:
    import urllib3

    with urllib3.PoolManager(maxsize=max(workers, 1), block=True, timeout=TIMEOUT) as pool:

        def one() -> int:
            response = pool.request("GET", url, retries=False)
            return _check(response.status, response.data)

        _threads(1, WARMUP, one)
        with _timed(timer):
            return _threads(workers, n, one)


@dataclass
class ClientSpec:
    name: str
    run: Callable[[str, int, int, dict[str, float]], int]
    kind: str  # "threads" or "tasks": how concurrency is made
    available: str = ""


def client_specs() -> list[ClientSpec]:
    specs = [
        ClientSpec("hyperpy Client", hyperpy_sync, "threads"),
        ClientSpec("hyperpy AsyncClient (trio)", hyperpy_async, "tasks"),
        ClientSpec("httpx Client", httpx_sync, "threads"),
        ClientSpec("httpx AsyncClient (trio)", httpx_async, "tasks"),
        ClientSpec("urllib3 PoolManager", urllib3_sync, "threads"),
    ]
    for spec in specs:
        module = spec.name.split()[0]
        if module != "hyperpy" and not _installed(module):
            spec.available = f"{module} is not installed"
    return specs


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# -- the run --------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    client: str
    n: int
    seconds: float = 0.0
    workers: int = 1
    failures: int = 0
    connections: int = 0  # opened by the client (hyperpy clients only; 0 if unknown)
    error: str = ""

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds and not self.error else 0.0


def measure(server: RunningServer, client: ClientSpec, n: int, workers: int) -> Result:
    result = Result(server.spec.name, client.name, n, workers=workers)
    timer: dict[str, float] = {}
    try:
        result.failures = client.run(server.url, n, workers, timer)
        result.seconds = timer["seconds"]
        result.connections = int(timer.get("connections", 0))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:120]
    return result


def print_table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    header = ("server", "client", "requests", "seconds", "req/s", "vs row 1", "notes")
    base = results[0].rate if results else 0.0
    rows = []
    for r in results:
        notes = r.error or (f"{r.failures} failed" if r.failures else "")
        if not notes and r.connections > r.workers:
            notes = f"{r.connections} connections opened for {r.workers} at a time"
        ratio = f"{r.rate / base:.2f}x" if base and r.rate else "-"
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        rows.append((r.server, r.client, str(r.n), f"{r.seconds:.2f}", rate, ratio, notes))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4, 5}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def h2load_table(n: int) -> int:
    """Each server under h2load (10 connections, 10 streams each), side by side."""
    if shutil.which("h2load") is None:
        print("h2load is not installed (Debian: nghttp2-client)")
        return 1
    print(f"h2load -n {n} -c 10 -m 10 against each server (h2c prior knowledge)")
    rows: list[tuple[str, float, str]] = []
    for spec in server_specs():
        if spec.available:
            print(f"skipped {spec.name}: {spec.available}")
            continue
        server = RunningServer(spec)
        try:
            server.wait_ready()
            cmd = ["h2load", "-n", str(n), "-c", "10", "-m", "10", server.url]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
        finally:
            server.stop()
        rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
        done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed", out)
        ok = f"{done.group(1)} ok, {done.group(2)} failed" if done else "?"
        rows.append((spec.name, float(rate.group(1)) if rate else 0.0, ok))
    base = rows[0][1] if rows and rows[0][1] else 1.0
    width = max(len(name) for name, _, _ in rows)
    for name, rate_, ok in rows:
        print(f"  {name:<{width}}  {rate_:>9,.0f} req/s  x{rate_ / base:5.2f}  ({ok})")
    return 0 if all(rate_ for _, rate_, _ in rows) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_hypercorn"]:
        run_hypercorn(int(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=2000, help="per row (2000)")
    parser.add_argument("--quick", action="store_true", help="200 requests per row")
    parser.add_argument(
        "--concurrency", "-c", type=int, default=10, help="tasks/threads in table 2 (10)"
    )
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for it all (600)")
    parser.add_argument(
        "--h2load",
        action="store_true",
        help="instead: HTTP/2 (h2c) request rate of each server under h2load -c 10 -m 10",
    )
    args = parser.parse_args(argv)
    n = 200 if args.quick else args.requests
    start_watchdog(args.budget)
    if args.h2load:
        return h2load_table(n * 10)

    print(
        f"hyperpy {hyperpy.__version__} bench: Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"{n} GET / per row after {WARMUP} warm-up requests"
    )
    servers = server_specs()
    clients = client_specs()
    for name, why in [(s.name, s.available) for s in servers] + [
        (c.name, c.available) for c in clients
    ]:
        if why:
            print(f"skipped {name}: {why} (pip install -e '.[bench]')")
    servers = [s for s in servers if not s.available]
    clients = [c for c in clients if not c.available]

    sequential: list[Result] = []
    concurrent: list[Result] = []
    for spec in servers:
        server = RunningServer(spec)
        try:
            try:
                server.wait_ready()
            except RuntimeError as exc:
                sequential.append(Result(spec.name, "-", n, error=f"server failed: {exc}"))
                continue
            for client in clients:
                print(f"  {spec.name} <- {client.name} ...", end="", flush=True)
                sequential.append(measure(server, client, n, 1))
                concurrent.append(measure(server, client, n, args.concurrency))
                print(f" {sequential[-1].rate:,.0f} / {concurrent[-1].rate:,.0f} req/s")
        finally:
            server.stop()

    print_table("Sequential: one request at a time over one kept-alive connection", sequential)
    c = args.concurrency
    print_table(
        f"Concurrent: {c} trio tasks (async clients) or {c} threads (sync clients) "
        "sharing one client",
        concurrent,
    )
    broken = [r for r in [*sequential, *concurrent] if r.error or r.failures]
    hyperpy_broken = [r for r in broken if "hyperpy" in r.server + r.client]
    if broken:
        print(f"\n{len(broken)} row(s) had errors or failed requests")
    return 1 if hyperpy_broken or not sequential else 0


if __name__ == "__main__":
    sys.exit(main())
