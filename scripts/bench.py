"""hyperpy next to its peers, every face in one run, with same-run ratios.

Sections (``--only NAME[,NAME...]``; all by default):

* ``servers``: HTTP/1.1 hello-world (13 bytes) under ``wrk -t1 -c50 --latency``:
  hyperpy ``AsyncServer`` (trio) and ``Server`` (threads), hypercorn (trio worker),
  uvicorn (h11 and httptools), aiohttp, waitress, granian (reference). req/s,
  p50/p99, errors and the server's peak RSS. Ratios vs hypercorn.
* ``h2-servers``: ``h2load -c10 -m10 -n N`` over h2c against hyperpy (both worlds),
  hypercorn and granian. Ratios vs hypercorn.
* ``clients``: every client against one fixed granian server (Rust, so the server
  is never the bottleneck): blocking clients sequentially and from 8 threads
  (vs urllib3), async clients at 1, 8, 50 and 200 tasks (vs aiohttp).
* ``h2-client``: HTTP/2 over TLS at 100 concurrent tasks (vs httpx).
* ``downloads``: 1 MiB bodies, one after another, vs a raw-socket loop of the same
  world (blocking sockets, trio sockets).
* ``idle``: 1,000 idle keep-alive connections to each server: KB per connection.

Each server runs in its own process group (so client and server never share a
GIL, and every child of a server dies with it); clients run in this process.
Peers whose package is missing are skipped with a note
(``pip install -e ".[bench]"``). hyperpy rows run once per HTTP/1.1 engine
(``--engine h11|zttp|both``); HTTP/2 rows do not depend on it.

    python scripts/bench.py --quick               # about 2 minutes
    python scripts/bench.py                       # about 9 minutes, 3 rounds
    python scripts/bench.py --only clients,idle --json out.json --plot out.svg

Compare rows of one run only: the machine, its load and the peers' versions all
move the absolute figures. Every run is bounded: past ``--budget`` seconds every
subprocess is killed and the script exits 1. docs/benchmarks.md has the details.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import datetime
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Only the standard library is imported at the top: granian imports this file as
# the module holding its app, and the peer servers' processes should carry only
# what they need (their memory is measured).

HERE = os.path.dirname(os.path.abspath(__file__))
BODY = b"Hello, world!"
MIB = 1 << 20
DOWNLOAD_PATH = f"/bytes/{MIB}"
TIMEOUT = 10.0  # per IO step, for every client
WARMUP = 20  # sequential requests before a client's clock starts
IDLE_CONNECTIONS = 1000
SECTIONS = ("servers", "h2-servers", "clients", "h2-client", "downloads", "idle")


@dataclass(frozen=True)
class Settings:
    """How long each measurement runs; ``--quick`` shortens them all."""

    rounds: int
    server_seconds: int  # wrk -d
    h2_seconds: float  # h2load -n is sized to last about this long
    client_seconds: float  # per client cell
    download_seconds: float

    @classmethod
    def make(cls, quick: bool, rounds: int | None) -> Settings:
        if quick:
            return cls(rounds or 1, 2, 1.5, 0.4, 0.8)
        return cls(rounds or 3, 5, 3.0, 1.2, 1.5)


# -- the apps: the most direct interface each server has ------------------------------


def _hello_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(BODY)).encode()),
    ]


async def asgi_hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """hypercorn's and uvicorn's app: what hyperpy's demo app answers for GET /."""
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
    await send({"type": "http.response.start", "status": 200, "headers": _hello_headers()})
    await send({"type": "http.response.body", "body": BODY})


def wsgi_hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """waitress's app."""
    start_response("200 OK", [(k.decode(), v.decode()) for k, v in _hello_headers()])
    return [BODY]


_MIB_BODY: list[bytes] = []  # made on first use: the hello-only servers never pay for it


async def rsgi_hello(scope: Any, proto: Any) -> None:
    """granian's app (RSGI, its fastest interface): hello, or 1 MiB for downloads."""
    if scope.path == DOWNLOAD_PATH:
        if not _MIB_BODY:
            _MIB_BODY.append(b"x" * MIB)
        proto.response_bytes(200, [("content-type", "application/octet-stream")], _MIB_BODY[0])
    else:
        proto.response_bytes(200, [("content-type", "text/plain; charset=utf-8")], BODY)


def serve_peer(name: str, port: int, many: bool) -> None:
    """Entry point of a peer server's process (``bench.py _serve NAME PORT [many]``)."""
    if name == "hypercorn":
        import trio
        from hypercorn.config import Config
        from hypercorn.trio import serve

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.accesslog = None
        config.errorlog = "-"
        config.loglevel = "WARNING"
        # hypercorn closes a connection after 1000 requests by default; the others do not.
        config.keep_alive_max_requests = 10**9
        trio.run(serve, asgi_hello, config)  # type: ignore[arg-type]
    elif name.startswith("uvicorn-"):
        import uvicorn

        uvicorn.run(
            asgi_hello,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            http=name.removeprefix("uvicorn-"),  # type: ignore[arg-type]
            access_log=False,
            log_level="warning",
        )
    elif name == "aiohttp":
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.Response(body=BODY, content_type="text/plain", charset="utf-8")

        app = web.Application()
        app.router.add_get("/", hello)
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
    elif name == "waitress":
        import waitress

        # waitress refuses connections past 100 by default; the idle section opens 1,000.
        limit = {"connection_limit": 2 * IDLE_CONNECTIONS} if many else {}
        waitress.serve(wsgi_hello, host="127.0.0.1", port=port, _quiet=True, **limit)
    else:
        raise SystemExit(f"unknown server {name!r}")


# -- processes: every one in its own group, all killed on any exit --------------------


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child if this process dies
    (even by SIGKILL, when no ``finally`` runs). Resolved here, before any fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


_PDEATHSIG = _parent_death_signal()


class Proc:
    """A subprocess leading its own process group, registered for clean-up."""

    live: set[Proc] = set()

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, capture: bool = False
    ) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=self._err,
            start_new_session=True,  # a terminal's Ctrl-C is ours to handle, not theirs
            preexec_fn=_PDEATHSIG,
        )
        Proc.live.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr_tail(self) -> str:
        self._err.seek(0)
        lines = self._err.read().decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else "(no output)"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.pid, sig)

    def stop(self, grace: float = 2.0) -> None:
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # the children of a stopped leader too
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        Proc.live.discard(self)
        self._err.close()


def kill_all() -> None:
    for proc in list(Proc.live):
        proc.kill()


def run_tool(argv: list[str], timeout: float) -> str:
    """Run a load tool (wrk, h2load) to completion; its stdout."""
    proc = Proc(argv, capture=True)
    try:
        out, _ = proc.popen.communicate(timeout=timeout)
        return out.decode(errors="replace") if out else ""
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{argv[0]} ran past {timeout:.0f} s") from None
    finally:
        proc.stop(grace=0)


def start_watchdog(budget: float) -> None:
    """Past ``budget`` seconds: kill every subprocess and exit 1, wherever the run is."""

    def expire() -> None:
        print(f"\nbench: over the {budget:.0f} s budget: stopping", file=sys.stderr, flush=True)
        kill_all()
        os._exit(1)

    timer = threading.Timer(budget, expire)
    timer.daemon = True
    timer.start()


def group_memory_kb(pgid: int, field_name: str) -> int:
    """``VmRSS`` or ``VmHWM`` summed over every process of a group (granian forks
    its workers), in KB."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:  # field 5: pgrp
                continue
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith(field_name + ":"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


def free_port() -> int:
    """A port the OS has just handed out: bind port 0, note the port, close."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installed(modules: str) -> bool:
    """Whether every module of a comma-separated list is importable ("" is)."""
    return all(importlib.util.find_spec(m) is not None for m in modules.split(",") if m)


# -- the servers ----------------------------------------------------------------------


@dataclass
class TLSFiles:
    cert: str
    key: str
    ca: str


@dataclass
class ServerSpec:
    label: str
    key: str
    module: str  # what must be importable ("" for hyperpy itself)
    argv: Callable[[int, bool, TLSFiles | None], list[str]]  # (port, many, tls)
    engine: str = ""
    h2c: bool = False


def hyperpy_server(sync: bool, engine: str) -> ServerSpec:
    world = "Server (threads)" if sync else "AsyncServer (trio)"

    def argv(port: int, many: bool, tls: TLSFiles | None) -> list[str]:
        cmd = [sys.executable, "-m", "hyperpy", "serve", "--no-access-log"]
        cmd += ["--log-level", "warning", "--port", str(port)]
        cmd += ["--sync"] if sync else []
        # At its default limit of 1000 the idle section's last connection would
        # close the oldest one.
        cmd += ["--max-connections", str(2 * IDLE_CONNECTIONS)] if many else []
        cmd += ["--certfile", tls.cert, "--keyfile", tls.key] if tls else []
        return cmd

    label = f"hyperpy {world}" + (f" [{engine}]" if engine else "")
    key = "hyperpy-threads" if sync else "hyperpy-trio"
    return ServerSpec(label, key, "", argv, engine=engine, h2c=True)


def peer_server(label: str, key: str, module: str, name: str, h2c: bool = False) -> ServerSpec:
    def argv(port: int, many: bool, tls: TLSFiles | None) -> list[str]:
        return [sys.executable, __file__, "_serve", name, str(port), "many" if many else ""]

    return ServerSpec(label, key, module, argv, h2c=h2c)


def granian_server() -> ServerSpec:
    def argv(port: int, many: bool, tls: TLSFiles | None) -> list[str]:
        cmd = [sys.executable, "-m", "granian", "--interface", "rsgi", "--no-ws"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        cmd += ["--workers", "1", "--working-dir", HERE]
        cmd += ["--ssl-certificate", tls.cert, "--ssl-keyfile", tls.key] if tls else []
        return [*cmd, "bench:rsgi_hello"]

    return ServerSpec("granian (RSGI, reference)", "granian", "granian", argv, h2c=True)


def server_specs(engines: list[str]) -> list[ServerSpec]:
    loop = "uvloop" if installed("uvloop") else "asyncio"
    specs = [hyperpy_server(False, e) for e in engines]
    specs += [hyperpy_server(True, e) for e in engines]
    specs += [
        peer_server("hypercorn (trio worker)", "hypercorn", "hypercorn", "hypercorn", h2c=True),
        peer_server(f"uvicorn (h11, {loop})", "uvicorn-h11", "uvicorn", "uvicorn-h11"),
        peer_server(
            f"uvicorn (httptools, {loop})", "uvicorn-httptools", "httptools", "uvicorn-httptools"
        ),
        peer_server("aiohttp (asyncio)", "aiohttp", "aiohttp", "aiohttp"),
        peer_server("waitress (4 threads)", "waitress", "waitress", "waitress"),
    ]
    return [*specs, granian_server()]


class RunningServer:
    def __init__(self, spec: ServerSpec, many: bool = False, tls: TLSFiles | None = None):
        self.spec = spec
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/"
        env = dict(os.environ)
        if spec.engine:
            env["HYPERPY_ENGINE"] = spec.engine
        self.proc = Proc(spec.argv(self.port, many, tls), env=env)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.popen.poll() is not None:
                code = self.proc.popen.returncode
                raise RuntimeError(f"exited with {code}: {self.proc.stderr_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"not listening after {timeout:.0f} s: {self.proc.stderr_tail()}")

    def memory_kb(self, field_name: str = "VmRSS") -> int:
        return group_memory_kb(self.proc.pid, field_name)

    def stop(self) -> None:
        self.proc.stop()


def start_servers(
    specs: list[ServerSpec], many: bool = False, tls: TLSFiles | None = None
) -> dict[str, RunningServer | str]:
    """Start ``specs`` together and wait for each; a label maps to its server or to
    why it is not running."""
    started: dict[str, RunningServer | str] = {}
    for spec in specs:
        started[spec.label] = (
            RunningServer(spec, many, tls)
            if installed(spec.module)
            else f"skipped: {spec.module} is not installed"
        )
    for label, server in started.items():
        if isinstance(server, RunningServer):
            started[label] = wait_or_retry(server, many, tls)
    return started


def wait_or_retry(
    server: RunningServer, many: bool, tls: TLSFiles | None, tries: int = 3
) -> RunningServer | str:
    """``server`` once it listens. The port was free when picked, but the machine is
    shared: one taken meanwhile means another port, not a failed row."""
    for _ in range(tries):
        try:
            server.wait_ready()
            return server
        except RuntimeError as exc:
            server.stop()
            if "in use" not in str(exc):
                return f"failed to start: {exc}"[:160]
            server = RunningServer(server.spec, many, tls)
    server.stop()
    return "failed to start: no free port"


def stop_servers(started: dict[str, RunningServer | str]) -> None:
    for server in started.values():
        if isinstance(server, RunningServer):
            server.stop()


# -- results --------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    key: str  # what targets and baselines look a row up by ("hyperpy-trio", "hypercorn")
    engine: str = ""  # hyperpy's HTTP/1.1 engine; "" for peers and HTTP/2 rows
    values: dict[str, list[float]] = field(default_factory=dict)  # column -> one per round
    extra: dict[str, Any] = field(default_factory=dict)  # shown after the values
    notes: list[str] = field(default_factory=list)

    def add(self, column: str, value: float) -> None:
        self.values.setdefault(column, []).append(value)

    def median(self, column: str) -> float | None:
        values = self.values.get(column)
        return statistics.median(values) if values else None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Table:
    name: str  # what targets find it by; its section is the part before any "/"
    title: str
    unit: str
    columns: list[str]
    baseline: str  # the key of the row every ratio is against
    rows: list[Row] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    lower_is_better: bool = False
    notes: list[str] = field(default_factory=list)

    def row(self, key: str, engine: str = "") -> Row | None:
        for row in self.rows:
            if row.key == key and row.engine == engine:
                return row
        return None

    def ratio(self, row: Row, column: str, baseline: str | None = None) -> float | None:
        base = self.row(baseline or self.baseline)
        value = row.median(column)
        base_value = base.median(column) if base else None
        return value / base_value if value and base_value else None


def rounds(settings: Settings) -> str:
    return f"{settings.rounds} round{'s' if settings.rounds > 1 else ''}"


def fmt_value(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def print_table(table: Table) -> None:
    base = table.row(table.baseline)
    base_label = base.label if base else f"{table.baseline} (not measured)"
    print(f"\n## {table.title}")
    print(f"   {table.unit}, median of the rounds; ratio: vs {base_label}, this run")
    header = ["", *(h for c in table.columns for h in (c, "ratio")), *table.extras, "notes"]
    lines = [header]
    for row in table.rows:
        cells = [row.label]
        for column in table.columns:
            cells += [fmt_value(row.median(column)), fmt_ratio(table.ratio(row, column))]
        cells += [str(row.extra.get(name, "-")) for name in table.extras]
        lines.append([*cells, "; ".join(row.notes)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    last = len(header) - 1
    for n, line in enumerate(lines):
        text = "  ".join(
            cell.ljust(w) if i in (0, last) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        print(text.rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths[:last]))
    for note in table.notes:
        print(f"   note: {note}")


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- raw HTTP/1.1 over sockets: baselines, the fallback load, the idle connections ----


def request_bytes(url: str) -> bytes:
    parts = urlsplit(url)
    return f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()


def _content_length(head: bytes) -> int:
    match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    if match is None:
        raise RuntimeError("a response without Content-Length")
    return int(match.group(1))


def read_response(recv: Callable[[int], bytes], buffer: bytearray) -> tuple[bytes, bytes]:
    """One response (head, body) from a blocking ``recv``; ``buffer`` keeps what
    follows it."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if not (data := recv(65536)):
            raise ConnectionError("closed before a response head")
        buffer += data
    head = bytes(buffer[: end + 4])
    length = _content_length(head)
    del buffer[: end + 4]
    chunks = [bytes(buffer)]
    got = len(buffer)
    buffer.clear()
    while got < length:
        if not (data := recv(262144)):
            raise ConnectionError("closed in a response body")
        chunks.append(data)
        got += len(data)
    body = b"".join(chunks)
    if len(body) > length:  # the start of whatever follows (never, with one request)
        buffer += body[length:]
        body = body[:length]
    return head, body


async def read_response_async(
    recv: Callable[[int], Awaitable[bytes]], buffer: bytearray
) -> tuple[bytes, bytes]:
    """The same as read_response, from an async ``recv``."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if not (data := await recv(65536)):
            raise ConnectionError("closed before a response head")
        buffer += data
    head = bytes(buffer[: end + 4])
    length = _content_length(head)
    del buffer[: end + 4]
    chunks = [bytes(buffer)]
    got = len(buffer)
    buffer.clear()
    while got < length:
        if not (data := await recv(262144)):
            raise ConnectionError("closed in a response body")
        chunks.append(data)
        got += len(data)
    body = b"".join(chunks)
    if len(body) > length:  # the start of whatever follows (never, with one request)
        buffer += body[length:]
        body = body[:length]
    return head, body


def _ok(head: bytes, body: bytes, expect: int) -> bool:
    return head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and len(body) == expect


# -- load generators ------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    timeouts: int = 0
    errors: int = 0  # connect, read and write errors, and non-2xx answers
    mean_ms: float | None = None  # h2load's mean time per request


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(url: str, seconds: int) -> Load:
    out = run_tool(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", "--timeout", "2s", url],
        timeout=seconds + 30,
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk said: {out.strip()[-200:]}")
    load = Load(float(rate.group(1)))
    if match := re.search(r"^\s+50%\s+(\S+)", out, re.M):
        load.p50_ms = _ms(match.group(1))
    if match := re.search(r"^\s+99%\s+(\S+)", out, re.M):
        load.p99_ms = _ms(match.group(1))
    if match := re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        load.errors += sum(int(match.group(i)) for i in (1, 2, 3))
        load.timeouts = int(match.group(4))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        load.errors += int(match.group(1))
    return load


def builtin_load(url: str, seconds: int, connections: int = 50) -> Load:
    """wrk's stand-in when it is missing: trio tasks over raw sockets. It is Python,
    so on a fast server it measures itself: its rows are labelled."""
    import trio

    parts = urlsplit(url)
    request = request_bytes(url)
    latencies: list[float] = []
    failures = {"errors": 0, "timeouts": 0}

    async def connection(deadline: float) -> None:
        try:
            stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        except OSError:
            failures["errors"] += 1
            return
        buffer = bytearray()
        async with stream:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    with trio.fail_after(2):
                        await stream.send_all(request)
                        head, body = await read_response_async(stream.receive_some, buffer)
                except trio.TooSlowError:
                    failures["timeouts"] += 1
                    return
                except (OSError, ConnectionError, trio.BrokenResourceError):
                    failures["errors"] += 1
                    return
                latencies.append(time.perf_counter() - start)
                if not _ok(head, body, len(BODY)):
                    failures["errors"] += 1

    async def main() -> float:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(connection, start + seconds)
        return time.perf_counter() - start

    elapsed = trio.run(main)
    latencies.sort()
    load = Load(len(latencies) / elapsed, **failures)
    if latencies:
        load.p50_ms = latencies[len(latencies) // 2] * 1000
        load.p99_ms = latencies[int(len(latencies) * 0.99)] * 1000
    return load


def h2load(url: str, n: int) -> Load:
    out = run_tool(["h2load", "-c10", "-m10", "-n", str(n), url], timeout=120)
    rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    if rate is None or done is None:
        raise RuntimeError(f"h2load said: {out.strip()[-200:]}")
    load = Load(float(rate.group(1)))
    load.errors = int(done.group(2)) + int(done.group(3))
    load.timeouts = int(done.group(4))
    if int(done.group(1)) < n:
        load.errors = max(load.errors, n - int(done.group(1)))
    if match := re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out):
        load.mean_ms = _ms(match.group(3))
    return load


# -- section: HTTP/1.1 servers --------------------------------------------------------


def section_servers(settings: Settings, engines: list[str]) -> Table:
    tool = "wrk -t1 -c50 --latency" if shutil.which("wrk") else "built-in trio load"
    table = Table(
        "servers",
        f"HTTP/1.1 servers: hello-world (13 bytes) under {tool}, "
        f"{settings.server_seconds} s x {rounds(settings)}",
        "req/s",
        ["req/s"],
        "hypercorn",
        extras=["p50 ms", "p99 ms", "timeouts", "errors", "peak RSS MB"],
    )
    if tool != "wrk -t1 -c50 --latency":
        table.notes.append(
            "wrk is not installed: a Python load generator in this process drove the "
            "servers, so the fastest ones are capped by it (apt-get install wrk)"
        )

    def load(url: str, seconds: int) -> Load:
        return wrk(url, seconds) if tool.startswith("wrk") else builtin_load(url, seconds)

    specs = server_specs(engines)
    started = start_servers(specs)
    loads: dict[str, list[Load]] = {spec.label: [] for spec in specs}
    try:
        for server in started.values():
            if isinstance(server, RunningServer):
                load(server.url, 1)  # warm-up: imports, caches, the first connections
        for round_ in range(settings.rounds):
            for spec in specs:
                server = started[spec.label]
                if not isinstance(server, RunningServer):
                    continue
                try:
                    result = load(server.url, settings.server_seconds)
                except RuntimeError as exc:
                    progress(f"  {spec.label}: {exc}")
                    continue
                loads[spec.label].append(result)
                progress(
                    f"[servers {round_ + 1}/{settings.rounds}] {spec.label}: "
                    f"{result.rps:,.0f} req/s"
                )
        for spec in specs:
            row = Row(spec.label, spec.key, spec.engine)
            server = started[spec.label]
            if isinstance(server, str):
                row.note(server)
            else:
                row.extra["peak RSS MB"] = f"{server.memory_kb('VmHWM') / 1024:.1f}"
            fill_load_row(row, loads[spec.label], "req/s")
            table.rows.append(row)
    finally:
        stop_servers(started)
    return table


def fill_load_row(row: Row, loads: list[Load], column: str) -> None:
    for load in loads:
        row.add(column, load.rps)
    if not loads:
        return
    p50 = [x.p50_ms for x in loads if x.p50_ms is not None]
    p99 = [x.p99_ms for x in loads if x.p99_ms is not None]
    mean = [x.mean_ms for x in loads if x.mean_ms is not None]
    if p50:
        row.extra["p50 ms"] = f"{statistics.median(p50):.2f}"
    if p99:
        row.extra["p99 ms"] = f"{statistics.median(p99):.2f}"
    if mean:
        row.extra["mean ms"] = f"{statistics.median(mean):.2f}"
    row.extra["timeouts"] = sum(x.timeouts for x in loads)
    row.extra["errors"] = sum(x.errors for x in loads)


# -- section: HTTP/2 servers ----------------------------------------------------------


def section_h2_servers(settings: Settings, engines: list[str]) -> Table:
    table = Table(
        "h2-servers",
        f"HTTP/2 servers (h2c): h2load -c10 -m10 -n N, N sized to about "
        f"{settings.h2_seconds:g} s, x {rounds(settings)}",
        "req/s",
        ["req/s"],
        "hypercorn",
        extras=["mean ms", "N", "timeouts", "errors"],
    )
    if shutil.which("h2load") is None:
        table.notes.append("h2load is not installed (apt-get install nghttp2-client)")
        return table
    # HTTP/2 does not go through the HTTP/1.1 engine: one hyperpy row per world.
    specs = [spec for spec in server_specs([""]) if spec.h2c]
    started = start_servers(specs)
    sizes: dict[str, int] = {}
    loads: dict[str, list[Load]] = {spec.label: [] for spec in specs}
    try:
        for spec in specs:
            server = started[spec.label]
            if isinstance(server, RunningServer):
                try:
                    warm = h2load(server.url, 2000)
                    rate = warm.rps
                except RuntimeError as exc:
                    started[spec.label] = f"h2load failed: {exc}"[:160]
                    continue
                sizes[spec.label] = int(min(max(rate * settings.h2_seconds, 2000), 500_000))
        for round_ in range(settings.rounds):
            for spec in specs:
                server = started[spec.label]
                if not isinstance(server, RunningServer):
                    continue
                try:
                    result = h2load(server.url, sizes[spec.label])
                except RuntimeError as exc:
                    progress(f"  {spec.label}: {exc}")
                    continue
                loads[spec.label].append(result)
                progress(
                    f"[h2-servers {round_ + 1}/{settings.rounds}] {spec.label}: "
                    f"{result.rps:,.0f} req/s"
                )
        for spec in specs:
            row = Row(spec.label, spec.key)
            server = started[spec.label]
            if isinstance(server, str):
                row.note(server)
            row.extra["N"] = sizes.get(spec.label, "-")
            fill_load_row(row, loads[spec.label], "req/s")
            table.rows.append(row)
    finally:
        stop_servers(started)
    return table


# -- clients: each is a context manager giving a `get(url) -> ok` ---------------------


@dataclass
class ClientOptions:
    engine: str  # "" for the library's default
    expect: int  # the body length a good response has
    pool: int = 8  # connections for the blocking clients that need a size
    ca: str | None = None  # CA file for TLS; HTTP/2 by ALPN when set
    url: str = ""  # with ca: a URL to ask once for the protocol the client got
    protocols: set[str] = field(default_factory=set)  # what that answer came over


SyncGet = Callable[[str], bool]
AsyncGet = Callable[[str], Awaitable[bool]]


@contextlib.contextmanager
def hyperpy_client(opts: ClientOptions) -> Iterator[SyncGet]:
    import hyperpy

    engine = {"engine": opts.engine} if opts.engine else {}
    with hyperpy.Client(timeout=TIMEOUT, **engine) as client:  # type: ignore[arg-type]

        def get(url: str) -> bool:
            response = client.get(url)
            return response.status == 200 and len(response.content) == opts.expect

        yield get


@contextlib.contextmanager
def urllib3_client(opts: ClientOptions) -> Iterator[SyncGet]:
    import urllib3

    with urllib3.PoolManager(maxsize=opts.pool, block=True, timeout=TIMEOUT) as pool:

        def get(url: str) -> bool:
            response = pool.request("GET", url, retries=False)
            return response.status == 200 and len(response.data) == opts.expect

        yield get


@contextlib.contextmanager
def requests_client(opts: ClientOptions) -> Iterator[SyncGet]:
    import requests

    with requests.Session() as session:

        def get(url: str) -> bool:
            response = session.get(url, timeout=TIMEOUT)
            return response.status_code == 200 and len(response.content) == opts.expect

        yield get


@contextlib.contextmanager
def httpx_client(opts: ClientOptions) -> Iterator[SyncGet]:
    import httpx

    with httpx.Client(timeout=TIMEOUT) as client:

        def get(url: str) -> bool:
            response = client.get(url)
            return response.status_code == 200 and len(response.content) == opts.expect

        yield get


@contextlib.contextmanager
def niquests_client(opts: ClientOptions) -> Iterator[SyncGet]:
    import niquests

    with niquests.Session() as session:

        def get(url: str) -> bool:
            response = session.get(url, timeout=TIMEOUT)
            return response.status_code == 200 and len(response.content or b"") == opts.expect

        yield get


@contextlib.contextmanager
def pyreqwest_client(opts: ClientOptions) -> Iterator[SyncGet]:
    from pyreqwest.client import SyncClientBuilder

    with SyncClientBuilder().timeout(datetime.timedelta(seconds=TIMEOUT)).build() as client:

        def get(url: str) -> bool:
            response = client.get(url).build().send()
            return response.status == 200 and len(response.bytes()) == opts.expect

        yield get


@contextlib.contextmanager
def raw_socket_client(opts: ClientOptions) -> Iterator[SyncGet]:
    """The blocking baseline: one socket, sendall, recv until Content-Length."""
    sock: socket.socket | None = None
    buffer = bytearray()

    def get(url: str) -> bool:
        nonlocal sock
        if sock is None:
            parts = urlsplit(url)
            sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request_bytes(url))
        head, body = read_response(sock.recv, buffer)
        return _ok(head, body, opts.expect)

    try:
        yield get
    finally:
        if sock is not None:
            sock.close()


@contextlib.asynccontextmanager
async def hyperpy_async_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    import hyperpy

    kwargs: dict[str, Any] = {"engine": opts.engine} if opts.engine else {}
    if opts.ca:
        kwargs.update(http2=True, verify=opts.ca)
    async with hyperpy.AsyncClient(timeout=TIMEOUT, **kwargs) as client:

        async def get(url: str) -> bool:
            response = await client.get(url)
            return response.status == 200 and len(response.content) == opts.expect

        if opts.ca:
            opts.protocols.add(f"HTTP/{(await client.get(opts.url)).http_version}")
        yield get


@contextlib.asynccontextmanager
async def httpx_async_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    import httpx

    kwargs: dict[str, Any] = {}
    if opts.ca:
        kwargs.update(http2=True, verify=ssl.create_default_context(cafile=opts.ca))
    async with httpx.AsyncClient(timeout=TIMEOUT, **kwargs) as client:

        async def get(url: str) -> bool:
            response = await client.get(url)
            return response.status_code == 200 and len(response.content) == opts.expect

        if opts.ca:
            opts.protocols.add((await client.get(opts.url)).http_version)
        yield get


@contextlib.asynccontextmanager
async def aiohttp_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(sock_read=TIMEOUT, sock_connect=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def get(url: str) -> bool:
            async with session.get(url) as response:
                body = await response.read()
                return response.status == 200 and len(body) == opts.expect

        yield get


@contextlib.asynccontextmanager
async def niquests_async_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    import niquests

    verify: Any = opts.ca or True
    async with niquests.AsyncSession() as session:

        async def get(url: str) -> bool:
            response = await session.get(url, timeout=TIMEOUT, verify=verify)
            return response.status_code == 200 and len(response.content or b"") == opts.expect

        if opts.ca:
            response = await session.get(opts.url, timeout=TIMEOUT, verify=verify)
            opts.protocols.add(f"HTTP/{(response.http_version or 0) / 10:g}")
        yield get


@contextlib.asynccontextmanager
async def pyreqwest_async_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().timeout(datetime.timedelta(seconds=TIMEOUT))
    if opts.ca:
        with open(opts.ca, "rb") as f:
            builder = builder.add_root_certificate_pem(f.read()).http2(True)
    async with builder.build() as client:

        async def get(url: str) -> bool:
            response = await client.get(url).build().send()
            return response.status == 200 and len(await response.bytes()) == opts.expect

        if opts.ca:
            opts.protocols.add((await client.get(opts.url).build().send()).version)
        yield get


@contextlib.asynccontextmanager
async def raw_trio_client(opts: ClientOptions) -> AsyncIterator[AsyncGet]:
    """The async baseline: one trio socket stream, send_all, receive_some."""
    import trio

    streams: list[trio.SocketStream] = []
    buffer = bytearray()

    async def get(url: str) -> bool:
        if not streams:
            parts = urlsplit(url)
            streams.append(await trio.open_tcp_stream(parts.hostname, parts.port))
        await streams[0].send_all(request_bytes(url))
        head, body = await read_response_async(streams[0].receive_some, buffer)
        return _ok(head, body, opts.expect)

    try:
        yield get
    finally:
        for stream in streams:
            await stream.aclose()


@dataclass
class ClientSpec:
    label: str
    key: str
    module: str
    world: str  # "sync", "trio" or "asyncio"
    make: Callable[[ClientOptions], Any]
    engine: str = ""

    def available(self) -> str:
        """Why this client cannot run ("" if it can)."""
        if not installed(self.module):
            return f"skipped: {self.module.replace(',', ' or ')} is not installed"
        return ""


def urllib3_label() -> str:
    """niquests' urllib3-future replaces the urllib3 package unless it was installed
    apart (docs/benchmarks.md): name what the urllib3 rows really ran."""
    from importlib import metadata

    try:
        future = metadata.version("urllib3-future")
    except metadata.PackageNotFoundError:
        return "urllib3"
    import urllib3

    return f"urllib3 (is urllib3-future {future}!)" if urllib3.__version__ == future else "urllib3"


def sync_clients(engines: list[str]) -> list[ClientSpec]:
    specs = [
        ClientSpec(f"hyperpy Client [{e}]", "hyperpy", "", "sync", hyperpy_client, e)
        for e in engines
    ]
    label = urllib3_label() if installed("urllib3") else "urllib3"
    return [
        *specs,
        ClientSpec(label, "urllib3", "urllib3", "sync", urllib3_client),
        ClientSpec("requests", "requests", "requests", "sync", requests_client),
        ClientSpec("httpx Client", "httpx", "httpx", "sync", httpx_client),
        ClientSpec("niquests Session", "niquests", "niquests", "sync", niquests_client),
        ClientSpec("pyreqwest (reference)", "pyreqwest", "pyreqwest", "sync", pyreqwest_client),
    ]


def asyncio_peers() -> list[ClientSpec]:
    """The asyncio clients every async table compares with (besides aiohttp)."""
    return [
        ClientSpec(
            "niquests AsyncSession (asyncio)", "niquests", "niquests", "asyncio",
            niquests_async_client,
        ),
        ClientSpec(
            "pyreqwest (asyncio, reference)", "pyreqwest", "pyreqwest", "asyncio",
            pyreqwest_async_client,
        ),
    ]  # fmt: skip


def async_clients(engines: list[str]) -> list[ClientSpec]:
    specs = [
        ClientSpec(
            f"hyperpy AsyncClient (trio) [{e}]", "hyperpy", "", "trio", hyperpy_async_client, e
        )
        for e in engines
    ]
    return [
        *specs,
        ClientSpec("httpx AsyncClient (trio)", "httpx", "httpx", "trio", httpx_async_client),
        ClientSpec("aiohttp (asyncio)", "aiohttp", "aiohttp", "asyncio", aiohttp_client),
        *asyncio_peers(),
    ]


# -- drivers: n workers sharing one client, each looping until a deadline ------------


@dataclass
class Tally:
    done: int = 0
    failed: int = 0

    def rate(self, elapsed: float) -> float:
        if self.failed:
            raise RuntimeError(f"{self.failed} of {self.done} requests failed")
        return self.done / elapsed


def drive_threads(get: SyncGet, url: str, workers: int, seconds: float) -> float:
    """Requests per second of ``workers`` threads calling ``get`` for ``seconds``."""
    tally = Tally()
    lock = threading.Lock()
    errors: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def work() -> None:
        done = failed = 0
        try:
            while time.perf_counter() < deadline:
                failed += not get(url)
                done += 1
        except BaseException as exc:
            errors.append(exc)
        with lock:
            tally.done += done
            tally.failed += failed

    start = time.perf_counter()
    if workers == 1:
        work()
    else:
        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return tally.rate(time.perf_counter() - start)


async def drive_tasks(world: str, get: AsyncGet, url: str, workers: int, seconds: float) -> float:
    """Requests per second of ``workers`` tasks awaiting ``get`` for ``seconds``."""
    tally = Tally()
    deadline = time.perf_counter() + seconds

    async def work() -> None:
        while time.perf_counter() < deadline:
            tally.failed += not await get(url)
            tally.done += 1

    start = time.perf_counter()
    if world == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(work)
    else:
        await asyncio.gather(*(work() for _ in range(workers)))
    return tally.rate(time.perf_counter() - start)


def client_round(
    spec: ClientSpec, url: str, concurrency: list[int], seconds: float, opts: ClientOptions
) -> dict[int, float | str]:
    """One round of one client: a fresh client, warmed up, then each concurrency
    (itself warmed briefly, so connections are open before the clock starts).
    Maps each concurrency to its req/s, or to what went wrong."""
    results: dict[int, float | str] = {}
    warm = max(0.1, seconds / 4)

    def failed(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:100]

    def sync_round() -> None:
        with spec.make(opts) as get:
            for _ in range(WARMUP):
                get(url)
            for n in concurrency:
                try:
                    drive_threads(get, url, n, warm)
                    results[n] = drive_threads(get, url, n, seconds)
                except Exception as exc:
                    results[n] = failed(exc)

    async def async_round() -> None:
        async with spec.make(opts) as get:
            for _ in range(WARMUP):
                await get(url)
            for n in concurrency:
                try:
                    await drive_tasks(spec.world, get, url, n, warm)
                    results[n] = await drive_tasks(spec.world, get, url, n, seconds)
                except Exception as exc:
                    results[n] = failed(exc)

    try:
        if spec.world == "sync":
            sync_round()
        elif spec.world == "trio":
            import trio

            trio.run(async_round)
        else:
            asyncio.run(async_round())
    except Exception as exc:  # the client could not even be opened or warmed up
        for n in concurrency:
            results.setdefault(n, failed(exc))
    return results


def measure_clients(
    table: Table,
    specs: list[ClientSpec],
    url: str,
    concurrency: list[int],
    seconds: float,
    rounds: int,
    opts_for: Callable[[ClientSpec], ClientOptions],
) -> None:
    """Fill ``table`` (one column per concurrency) with interleaved rounds of ``specs``."""
    rows = {spec.label: Row(spec.label, spec.key, spec.engine) for spec in specs}
    table.rows.extend(rows.values())
    runnable = []
    for spec in specs:
        if why := spec.available():
            rows[spec.label].note(why)
        else:
            runnable.append(spec)
    options = {spec.label: opts_for(spec) for spec in runnable}
    for round_ in range(rounds):
        for spec in runnable:
            row = rows[spec.label]
            results = client_round(spec, url, concurrency, seconds, options[spec.label])
            for n, column in zip(concurrency, table.columns, strict=True):
                result = results[n]
                if isinstance(result, str):
                    row.note(f"{column}: {result}")
                else:
                    row.add(column, result)
            shown = ", ".join(
                f"{r:,.0f}" if isinstance(r, float) else "error" for r in results.values()
            )
            progress(f"[{table.name} {round_ + 1}/{rounds}] {spec.label}: {shown}")
    for spec in runnable:
        if protocols := options[spec.label].protocols:
            rows[spec.label].note("over " + ", ".join(sorted(protocols)))


# -- sections: clients ----------------------------------------------------------------


def client_server(tls: TLSFiles | None = None) -> tuple[RunningServer | None, str]:
    """The one server every client runs against: granian, a Rust server, so the
    figures are the clients'. hyperpy's trio server stands in if granian is missing."""
    for spec, note in (
        (granian_server(), "granian (RSGI)"),
        (hyperpy_server(False, ""), "hyperpy's trio server (granian is not installed)"),
    ):
        if not installed(spec.module):
            continue
        started = wait_or_retry(RunningServer(spec, tls=tls), False, tls)
        if isinstance(started, str):
            progress(f"  {spec.label}: {started}")
            continue
        return started, note
    return None, "no server could be started"


def section_clients(settings: Settings, engines: list[str]) -> list[Table]:
    server, served_by = client_server()
    sync_table = Table(
        "clients/blocking",
        f"Blocking clients: GET / (13 bytes) from {served_by}, one client shared by "
        f"1 or 8 threads, {settings.client_seconds:g} s x {rounds(settings)}",
        "req/s",
        ["1 thread", "8 threads"],
        "urllib3",
    )
    async_table = Table(
        "clients/async",
        f"Async clients: GET / (13 bytes) from {served_by}, one client shared by "
        f"1 to 200 tasks, {settings.client_seconds:g} s x {rounds(settings)}",
        "req/s",
        ["1 task", "8 tasks", "50 tasks", "200 tasks"],
        "aiohttp",
        notes=["hyperpy, httpx and aiohttp pool at most 100 connections by default"],
    )
    if server is None:
        sync_table.notes.append(served_by)
        return [sync_table, async_table]
    try:
        measure_clients(
            sync_table,
            sync_clients(engines),
            server.url,
            [1, 8],
            settings.client_seconds,
            settings.rounds,
            lambda spec: ClientOptions(spec.engine, len(BODY)),
        )
        measure_clients(
            async_table,
            async_clients(engines),
            server.url,
            [1, 8, 50, 200],
            settings.client_seconds,
            settings.rounds,
            lambda spec: ClientOptions(spec.engine, len(BODY)),
        )
    finally:
        server.stop()
    return [sync_table, async_table]


def make_tls_files(directory: str) -> TLSFiles | None:
    """A CA and a certificate for 127.0.0.1 (trustme), or None without trustme."""
    if not installed("trustme"):
        return None
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    files = TLSFiles(*(os.path.join(directory, n) for n in ("cert.pem", "key.pem", "ca.pem")))
    leaf.cert_chain_pems[0].write_to_path(files.cert)
    leaf.private_key_pem.write_to_path(files.key)
    ca.cert_pem.write_to_path(files.ca)
    return files


def section_h2_client(settings: Settings, engines: list[str]) -> Table:
    table = Table(
        "h2-client",
        f"HTTP/2 clients over TLS: GET / with 100 concurrent tasks on one client, "
        f"{settings.client_seconds:g} s x {rounds(settings)}",
        "req/s",
        ["100 tasks"],
        "httpx",
    )
    specs = [
        ClientSpec("hyperpy AsyncClient (trio)", "hyperpy", "", "trio", hyperpy_async_client),
        ClientSpec("httpx AsyncClient (trio)", "httpx", "httpx,h2", "trio", httpx_async_client),
        *asyncio_peers(),
    ]
    with tempfile.TemporaryDirectory() as directory:
        tls = make_tls_files(directory)
        if tls is None:
            table.notes.append("trustme is not installed: no certificate for a TLS server")
            return table
        server, served_by = client_server(tls)
        if server is None:
            table.notes.append(served_by)
            return table
        table.title += f", served by {served_by}"
        try:
            measure_clients(
                table,
                specs,
                server.url,
                [100],
                settings.client_seconds,
                settings.rounds,
                lambda spec: ClientOptions(spec.engine, len(BODY), ca=tls.ca, url=server.url),
            )
        finally:
            server.stop()
    return table


def section_downloads(settings: Settings, engines: list[str]) -> list[Table]:
    server, served_by = client_server()
    title = (
        f"1 MiB downloads from {served_by}, one after another on one connection, "
        f"{settings.download_seconds:g} s x {rounds(settings)}"
    )
    blocking = Table("downloads/blocking", "Blocking " + title, "MiB/s", ["MiB/s"], "raw-socket")
    asynchronous = Table("downloads/async", "Async " + title, "MiB/s", ["MiB/s"], "raw-trio")
    if server is None:
        blocking.notes.append(served_by)
        return [blocking, asynchronous]
    sync_specs = [
        ClientSpec("raw socket loop (blocking)", "raw-socket", "", "sync", raw_socket_client),
        *(
            ClientSpec(f"hyperpy Client [{e}]", "hyperpy", "", "sync", hyperpy_client, e)
            for e in engines
        ),
        ClientSpec(urllib3_label(), "urllib3", "urllib3", "sync", urllib3_client),
        ClientSpec("httpx Client", "httpx", "httpx", "sync", httpx_client),
    ]
    async_specs = [
        ClientSpec("raw trio socket loop", "raw-trio", "trio", "trio", raw_trio_client),
        *(
            ClientSpec(
                f"hyperpy AsyncClient (trio) [{e}]", "hyperpy", "", "trio", hyperpy_async_client, e
            )
            for e in engines
        ),
        ClientSpec("httpx AsyncClient (trio)", "httpx", "httpx", "trio", httpx_async_client),
        ClientSpec("aiohttp (asyncio)", "aiohttp", "aiohttp", "asyncio", aiohttp_client),
    ]
    url = server.url.rstrip("/") + DOWNLOAD_PATH
    try:
        for table, specs in ((blocking, sync_specs), (asynchronous, async_specs)):
            measure_clients(
                table,
                specs,
                url,
                [1],
                settings.download_seconds,
                settings.rounds,
                lambda spec: ClientOptions(spec.engine, MIB),
            )
    finally:
        server.stop()
    return [blocking, asynchronous]


# -- section: idle connections --------------------------------------------------------


def open_idle(url: str, count: int, batch: int = 50) -> list[socket.socket]:
    """``count`` connections that each had one request answered and stay open.
    In batches, so that a server with a short accept backlog keeps up."""
    parts = urlsplit(url)
    request = request_bytes(url)
    socks: list[socket.socket] = []
    try:
        while len(socks) < count:
            group = [
                socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
                for _ in range(min(batch, count - len(socks)))
            ]
            socks += group
            for sock in group:
                sock.sendall(request)
            for sock in group:
                head, body = read_response(sock.recv, bytearray())
                if not _ok(head, body, len(BODY)):
                    raise RuntimeError(f"a bad answer: {head[:40]!r}")
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed (a closed one reads EOF)."""
    poller = select.poll()
    for sock in socks:
        poller.register(sock, select.POLLIN)
    return len(socks) - len(poller.poll(0))


def measure_idle(server: RunningServer, count: int) -> tuple[float, int, int, int]:
    """(KB per connection, connections open when measured, RSS before, RSS after)."""
    with contextlib.closing(open_idle(server.url, 1)[0]) as sock:
        for _ in range(WARMUP):  # the first requests' lazy imports and caches
            sock.sendall(request_bytes(server.url))
            read_response(sock.recv, bytearray())
    time.sleep(0.3)
    before = server.memory_kb()
    socks = open_idle(server.url, count)
    try:
        time.sleep(0.5)  # let the server settle (threads park, buffers shrink)
        after = server.memory_kb()
        alive = still_open(socks)
    finally:
        for sock in socks:
            sock.close()
    if alive < count * 0.99:
        raise RuntimeError(f"the server closed {count - alive} of the {count} connections")
    return (after - before) / alive, alive, before, after


def section_idle(settings: Settings, engines: list[str]) -> Table:
    table = Table(
        "idle",
        f"Idle keep-alive connections: {IDLE_CONNECTIONS:,} connections, one request "
        f"each, then idle; the server's RSS growth per connection, {rounds(settings)}",
        "KB/conn",
        ["KB/conn"],
        "hypercorn",
        extras=["open", "RSS before MB", "RSS after MB"],
        lower_is_better=True,
    )
    specs = server_specs(engines)
    rows = {spec.label: Row(spec.label, spec.key, spec.engine) for spec in specs}
    table.rows.extend(rows.values())
    for round_ in range(settings.rounds):
        for spec in specs:
            row = rows[spec.label]
            if round_ and not row.values:  # it failed or was skipped in round 1
                continue
            idle_round(spec, row)
            if row.values:
                progress(
                    f"[idle {round_ + 1}/{settings.rounds}] {spec.label}: "
                    f"{row.values['KB/conn'][-1]:.1f} KB per connection"
                )
    return table


def idle_round(spec: ServerSpec, row: Row) -> None:
    """One measurement on a fresh server: after a load run, freed memory the
    allocator keeps would hide what the connections cost."""
    started = start_servers([spec], many=True)
    server = started[spec.label]
    if isinstance(server, str):
        row.note(server)
        return
    try:
        per_conn, alive, before, after = measure_idle(server, IDLE_CONNECTIONS)
    except (OSError, RuntimeError) as exc:
        row.note(f"{type(exc).__name__}: {exc}"[:120])
    else:
        row.add("KB/conn", per_conn)
        row.extra["open"] = alive
        row.extra["RSS before MB"] = f"{before / 1024:.1f}"
        row.extra["RSS after MB"] = f"{after / 1024:.1f}"
    finally:
        stop_servers(started)


# -- hyperpy's targets ----------------------------------------------------------------


@dataclass
class Target:
    text: str
    measured: str
    ok: bool | None  # None: not measured in this run


# hyperpy's targets from its performance issue that are a same-run ratio:
# (table, text, row key, column, baseline row key, at least). Checked per engine
# for tables whose hyperpy rows have one.
RATIO_TARGETS = [
    ("servers", "async server h1 ≥ 4x hypercorn", "hyperpy-trio", "req/s", "hypercorn", 4.0),
    ("h2-servers", "HTTP/2 server (trio) ≥ 3x hypercorn", "hyperpy-trio", "req/s",
     "hypercorn", 3.0),
    ("h2-servers", "HTTP/2 server (threads) ≥ 3x hypercorn", "hyperpy-threads", "req/s",
     "hypercorn", 3.0),
    ("clients/blocking", "sync client sequential ≥ 1.5x urllib3", "hyperpy", "1 thread",
     "urllib3", 1.5),
    ("clients/blocking", "sync client sequential ≥ 2.5x httpx", "hyperpy", "1 thread",
     "httpx", 2.5),
    ("clients/async", "async client sequential ≥ 1.1x aiohttp", "hyperpy", "1 task",
     "aiohttp", 1.1),
    ("clients/async", "async client at 50 ≥ 0.8x aiohttp", "hyperpy", "50 tasks", "aiohttp", 0.8),
    ("clients/async", "async client at 50 ≥ 10x httpx", "hyperpy", "50 tasks", "httpx", 10.0),
    ("h2-client", "HTTP/2 client (TLS, 100 tasks) ≥ 2x httpx", "hyperpy", "100 tasks",
     "httpx", 2.0),
    ("downloads/blocking", "1 MiB downloads, blocking ≥ 0.9x raw socket", "hyperpy", "MiB/s",
     "raw-socket", 0.9),
    ("downloads/async", "1 MiB downloads, trio ≥ 0.9x raw socket", "hyperpy", "MiB/s",
     "raw-trio", 0.9),
]  # fmt: skip


def find(tables: list[Table], name: str) -> Table | None:
    return next((t for t in tables if t.name == name), None)


def ratio_target(
    table: Table | None, text: str, row: Row | None, column: str, baseline: str, least: float
) -> Target:
    ratio = table.ratio(row, column, baseline) if table and row else None
    if ratio is None:
        return Target(text, "not measured", None)
    return Target(text, f"{ratio:.2f}x", ratio >= least)


def targets(tables: list[Table], engines: list[str]) -> list[Target]:
    out: list[Target] = []
    for name, text, key, column, baseline, least in RATIO_TARGETS:
        table = find(tables, name)
        if table is None:  # a section not run
            continue
        rows = [r for r in table.rows if r.key == key]
        for row in rows or [None]:
            tag = f" [{row.engine}]" if row and row.engine else ""
            out.append(ratio_target(table, text + tag, row, column, baseline, least))
    servers, idle = find(tables, "servers"), find(tables, "idle")
    for engine in engines:
        if servers:
            out.append(sync_server_target(servers, engine))
        if idle:
            out.append(idle_target(idle, "hyperpy-trio", engine, 8.0))
            out.append(idle_target(idle, "hyperpy-threads", engine, 12.0))
    return out


def sync_server_target(table: Table | None, engine: str) -> Target:
    text = f"sync server ≥ 1.0x waitress, 0 timeouts, p99 < 10x p50 [{engine}]"
    row = table.row("hyperpy-threads", engine) if table else None
    base = ratio_target(table, text, row, "req/s", "waitress", 1.0)
    if base.ok is None or row is None:
        return base
    timeouts = int(row.extra.get("timeouts", 0))
    p50 = float(row.extra.get("p50 ms", "nan"))
    p99 = float(row.extra.get("p99 ms", "nan"))
    tail = p99 / p50 if p50 else float("inf")
    measured = f"{base.measured}, {timeouts} timeouts, p99 = {tail:.1f}x p50"
    return Target(text, measured, bool(base.ok and timeouts == 0 and tail < 10))


def idle_target(table: Table | None, key: str, engine: str, limit: float) -> Target:
    world = "trio" if key == "hyperpy-trio" else "threads"
    text = f"idle connection RSS ({world}) ≤ {limit:g} KB [{engine}]"
    row = table.row(key, engine) if table else None
    value = row.median("KB/conn") if row else None
    if value is None:
        return Target(text, "not measured", None)
    return Target(text, f"{value:.1f} KB", value <= limit)


def print_targets(found: list[Target]) -> None:
    if not found:
        return
    print("\n## hyperpy's targets (ratios from this run)")
    width = max(len(t.text) for t in found)
    for t in found:
        mark = "?" if t.ok is None else "✓" if t.ok else "✗"
        print(f"{mark} {t.text:<{width}}  {t.measured}")
    met = sum(1 for t in found if t.ok)
    measured = sum(1 for t in found if t.ok is not None)
    print(f"{met} of {measured} measured targets met")


# -- the machine, the plot, the JSON --------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import hyperpy

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "hyperpy": hyperpy.__version__,
        "peers": peer_versions(),
    }


def peer_versions() -> dict[str, str]:
    from importlib import metadata

    names = [
        "trio", "h11", "h2", "zttp", "hypercorn", "uvicorn", "httptools", "uvloop", "aiohttp",
        "waitress", "granian", "urllib3", "urllib3-future", "requests", "httpx", "niquests",
        "pyreqwest",
    ]  # fmt: skip
    versions = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def plot(tables: list[Table], path: str, meta: dict[str, Any], engines: list[str]) -> None:
    """A bar chart per table (hyperpy's bars in their own colour), into ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\n--plot {path}: matplotlib is not installed (pip install matplotlib)")
        return
    shown = [t for t in tables if any(r.values for r in t.rows)]
    if not shown:
        print(f"\n--plot {path}: nothing was measured")
        return
    rows_shown = sum(len([r for r in t.rows if r.values]) for t in shown)
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 1.3 * len(shown) + 0.32 * rows_shown))
    axes = [axes] if len(shown) == 1 else list(axes)
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:gray"]
    for ax, table in zip(axes, shown, strict=True):
        rows = [r for r in table.rows if r.values]
        height = 0.8 / len(table.columns)
        for i, column in enumerate(table.columns):
            if len(table.columns) == 1:  # one bar per row: hyperpy's stand out by colour
                colors = ["tab:orange" if r.key.startswith("hyperpy") else palette[0] for r in rows]
            else:
                colors = [palette[i % len(palette)]] * len(rows)
            values = [r.median(column) or 0.0 for r in rows]
            ys = [y + i * height for y in range(len(rows))]
            ax.barh(ys, values, height=height, color=colors, label=column)
        ax.set_yticks([y + 0.4 - height / 2 for y in range(len(rows))])
        ax.set_yticklabels([r.label for r in rows], fontsize=7)
        for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
            if row.key.startswith("hyperpy"):
                tick.set_fontweight("bold")
        ax.invert_yaxis()
        ax.set_xlabel(table.unit + (" (lower is better)" if table.lower_is_better else ""))
        ax.set_title(table.title.split(":")[0].split(",")[0], fontsize=8, loc="left")
        if len(table.columns) > 1:
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(
        f"hyperpy {meta['hyperpy']} benchmarks, {meta['date']}: {meta['cpu']}, "
        f"{meta['cores']} cores; engine {', '.join(engines)}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path)
    print(f"\nplot written to {path}")


# -- the run --------------------------------------------------------------------------


def available_engines() -> list[str]:
    """hyperpy's HTTP/1.1 engines installed here ([""] for a hyperpy without them)."""
    try:
        from hyperpy._core import engine
    except ImportError:
        return [""]
    found = []
    for name in engine.ENGINES:
        try:
            engine.choose(name)
        except Exception:
            continue
        found.append(name)
    return found


def pick_engines(wanted: str) -> list[str]:
    found = available_engines()
    if wanted == "both":
        return found
    if wanted not in found:
        raise SystemExit(f"bench: engine {wanted!r} is not available here (found: {found})")
    return [wanted]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, 1 round (~2 min)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3; --quick: 1)")
    parser.add_argument(
        "--only", action="append", default=[], help=f"sections: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--engine", default="both", choices=["h11", "zttp", "both"], help="hyperpy's engine(s)"
    )
    parser.add_argument("--budget", type=float, help="seconds for it all (900; --quick: 240)")
    parser.add_argument("--plot", metavar="FILE.svg|png", help="a bar chart of the results")
    parser.add_argument("--json", metavar="FILE", help="save the raw results")
    # The flag this script had before its sections: the same as --only h2-servers.
    parser.add_argument("--h2load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.h2load:
        args.only.append("h2-servers")
    args.only = [s.strip() for item in args.only for s in item.split(",") if s.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    return args


def run_sections(args: argparse.Namespace, settings: Settings, engines: list[str]) -> list[Table]:
    wanted = [s for s in SECTIONS if not args.only or s in args.only]
    sections: dict[str, Callable[[Settings, list[str]], Table | list[Table]]] = {
        "servers": section_servers,
        "h2-servers": section_h2_servers,
        "clients": section_clients,
        "h2-client": section_h2_client,
        "downloads": section_downloads,
        "idle": section_idle,
    }
    tables: list[Table] = []
    for name in wanted:
        started = time.monotonic()
        result = sections[name](settings, engines)
        for table in result if isinstance(result, list) else [result]:
            tables.append(table)
            print_table(table)
        progress(f"[{name}] done in {time.monotonic() - started:.0f} s")
    return tables


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_serve"]:
        serve_peer(argv[1], int(argv[2]), argv[3:4] == ["many"])
        return 0
    args = parse_args(argv)
    settings = Settings.make(args.quick, args.rounds)
    engines = pick_engines(args.engine)
    start_watchdog(args.budget or (240.0 if args.quick else 900.0))
    atexit.register(kill_all)
    # SIGTERM unwinds like Ctrl-C does, through every `finally` that stops a server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    meta = machine()
    print(
        f"hyperpy {meta['hyperpy']} bench, {meta['date']}: Python {meta['python']}, "
        f"{meta['cpu']}, {meta['cores']} cores; engine(s): {', '.join(engines)}; "
        f"{settings.rounds} round(s)"
    )
    print("peers: " + ", ".join(f"{k} {v}" for k, v in meta["peers"].items()))
    started = time.monotonic()
    try:
        tables = run_sections(args, settings, engines)
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()
    found = targets(tables, engines)
    print_targets(found)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            payload = {
                "meta": {**meta, "engines": engines, "settings": asdict(settings)},
                "tables": [asdict(t) for t in tables],
                "targets": [asdict(t) for t in found],
            }
            json.dump(payload, f, indent=1, default=str)
        print(f"results written to {args.json}")
    if args.plot:
        plot(tables, args.plot, meta, engines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
