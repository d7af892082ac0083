"""Helpers shared by the security probes: a server in its own process, a canary,
memory watching, raw HTTP/2 and HTTP/1.1 peers, and soft checks.

Every attack here talks to a real server over 127.0.0.1 sockets. The server runs
``serve.py`` in a subprocess, so its memory (VmRSS) can be measured and a flood
cannot disturb the test process. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import hpack
import hyperframe.frame as hf
from h2.errors import ErrorCodes

import hyperpy

SERVE = Path(__file__).with_name("serve.py")
MiB = 1024 * 1024
RSS_GROWTH_LIMIT = 32 * MiB
CANARY_WORST_LIMIT = 1.0

# -- the server in its own process ----------------------------------------------------


class ServerProcess:
    """A running ``serve.py``: its URL and address, its pid and memory, its log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.address: tuple[str, int] = (host, int(port))
        self.pid = proc.pid
        self._log_path = log_path

    @property
    def authority(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        """The server's resident memory now, in bytes (VmRSS)."""
        return proc_status_bytes(self.pid, "VmRSS")

    def log(self) -> str:
        """What the server wrote on stderr so far (its WARNING+ log records)."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stats(self, timeout: float = 5.0) -> dict[str, int]:
        """The ``/slow`` handler counters of ``serve.py`` (over a new connection)."""
        with hyperpy.Client(timeout=timeout) as client:
            data: dict[str, int] = client.get(self.url + "/stats").json()
            return data

    def warm_up(self) -> None:
        """One request over HTTP/1.1 and one over HTTP/2, so the baseline memory
        already holds both code paths."""
        assert still_serves(self.url, http2=False), "warm-up over HTTP/1.1 failed"
        assert still_serves(self.url, http2=True), "warm-up over HTTP/2 failed"


def proc_status_bytes(pid: int, name: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (VmRSS, VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(name)


@contextlib.contextmanager
def run_server(
    world: str,
    limits: dict[str, Any] | None = None,
    h2_settings: dict[str, Any] | None = None,
    start_timeout: float = 15.0,
) -> Iterator[ServerProcess]:
    """Start ``serve.py`` for ``world`` ("trio" or "threads"); stop it on leaving
    (SIGTERM, up to 5 s for its graceful shutdown, then SIGKILL)."""
    command = [sys.executable, str(SERVE), "--world", world]
    if limits:
        command += ["--limits", json.dumps(limits)]
    if h2_settings:
        command += ["--h2-settings", json.dumps(h2_settings)]
    fd, name = tempfile.mkstemp(prefix="hyperpy-serve-", suffix=".log")
    log_path = Path(name)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=fd, stdin=subprocess.DEVNULL)
    os.close(fd)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
        line = proc.stdout.readline().decode() if ready else ""
        if not line.startswith("URL "):
            proc.kill()
            proc.wait(5)
            detail = log_path.read_text(errors="replace").strip()
            raise AssertionError(
                f"serve.py --world {world} limits={limits} h2={h2_settings} did not start"
                f" (exit {proc.returncode}): {detail}"
            )
        yield ServerProcess(proc, line.split()[1], log_path)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        log_path.unlink(missing_ok=True)


def still_serves(url: str, http2: bool = False, timeout: float = 5.0) -> bool:
    """A normal ``GET /`` on a new connection is answered ``Hello, world!``."""
    try:
        with hyperpy.Client(http2_prior_knowledge=http2, timeout=timeout) as client:
            response = client.get(url + "/")
            return response.status == 200 and response.text == "Hello, world!"
    except hyperpy.HTTPError:
        return False


# -- memory -----------------------------------------------------------------------------


class MemoryWatch:
    """The server's resident memory during a block: baseline at entry, peak inside.

    The peak is the larger of a 20 ms sampler of VmRSS and the kernel's VmHWM
    (reset at entry through ``/proc/PID/clear_refs`` when that is allowed).
    """

    def __init__(self, server: ServerProcess, interval: float = 0.02) -> None:
        self.server = server
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="rss-sampler")

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, self.server.rss())
            except (OSError, KeyError):
                return  # the server is gone

    def __enter__(self) -> MemoryWatch:
        self.baseline = self.peak = self.server.rss()
        try:
            with open(f"/proc/{self.server.pid}/clear_refs", "w") as clear:
                clear.write("5")  # reset VmHWM to the current RSS
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(2)
        try:
            self.peak = max(self.peak, self.server.rss())
            if self.hwm_reset:
                self.peak = max(self.peak, proc_status_bytes(self.server.pid, "VmHWM"))
        except (OSError, KeyError):
            pass

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def describe(self) -> str:
        return (
            f"RSS {self.baseline / MiB:.1f} MiB -> peak {self.peak / MiB:.1f} MiB"
            f" (+{self.growth / MiB:.1f} MiB)"
        )


# -- the canary ---------------------------------------------------------------------------


class Canary:
    """A background thread that GETs ``/`` every ``interval`` on its own connection(s)
    while an attack runs; records every latency and failure.

    ``http2``: over HTTP/2 prior knowledge. ``fresh``: a new connection (a new
    client) for each request, as a newly arriving user would.
    """

    def __init__(
        self,
        url: str,
        *,
        http2: bool = False,
        fresh: bool = False,
        interval: float = 0.05,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.http2 = http2
        self.fresh = fresh
        self.interval = interval
        self.timeout = timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="canary")

    @property
    def name(self) -> str:
        return ("h2" if self.http2 else "h1") + (" fresh" if self.fresh else "")

    def _client(self) -> hyperpy.Client:
        return hyperpy.Client(http2_prior_knowledge=self.http2, timeout=self.timeout)

    def _probe(self, client: hyperpy.Client) -> None:
        start = time.monotonic()
        try:
            response = client.get(self.url + "/")
            if response.status != 200 or response.text != "Hello, world!":
                self.failures.append(f"status {response.status} {response.text[:40]!r}")
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
        self.latencies.append(time.monotonic() - start)

    def _run(self) -> None:
        if self.fresh:
            while not self._stop.is_set():
                with self._client() as client:
                    self._probe(client)
                self._stop.wait(self.interval)
            return
        with self._client() as client:
            while not self._stop.is_set():
                self._probe(client)
                self._stop.wait(self.interval)

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout * 3 + 2)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    def describe(self) -> str:
        text = f"canary {self.name}: {len(self.latencies)} probes, worst {self.worst:.2f} s"
        if self.failures:
            text += f", {len(self.failures)} failed (first: {self.failures[0]})"
        return text


# -- soft checks ----------------------------------------------------------------------------


class Checks:
    """Every expectation of a probe is checked; all the failed ones are reported
    together, with what was observed, so one run tells the whole story."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.failed: list[str] = []
        self.notes: list[str] = []

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.failed.append(message)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def healthy(self, memory: MemoryWatch | None, canaries: Sequence[Canary]) -> None:
        """The server's memory stayed bounded and every canary was served in time."""
        if memory is not None:
            self.note(memory.describe())
            self.expect(
                memory.growth < RSS_GROWTH_LIMIT,
                f"server RSS grew by {memory.growth / MiB:.1f} MiB (limit"
                f" {RSS_GROWTH_LIMIT // MiB} MiB)",
            )
        for canary in canaries:
            self.note(canary.describe())
            self.expect(
                not canary.failures,
                f"canary {canary.name}: {len(canary.failures)} failed requests"
                f" (first: {canary.failures[0] if canary.failures else ''})",
            )
            self.expect(bool(canary.latencies), f"canary {canary.name}: no probe completed")
            self.expect(
                canary.worst < CANARY_WORST_LIMIT,
                f"canary {canary.name}: worst latency {canary.worst:.2f} s"
                f" (limit {CANARY_WORST_LIMIT} s)",
            )

    def verify(self) -> None:
        print(f"[{self.title}] observed: " + "; ".join(self.notes))
        if self.failed:
            raise AssertionError(
                f"{self.title}: " + " | ".join(self.failed) + "\nobserved: " + "; ".join(self.notes)
            )


@dataclass
class Probe:
    """A server under attack with its memory watch and canaries (see ``probing``)."""

    server: ServerProcess
    memory: MemoryWatch
    canaries: list[Canary]


@contextlib.contextmanager
def probing(
    world: str,
    limits: dict[str, Any] | None = None,
    h2_settings: dict[str, Any] | None = None,
    canaries: Sequence[str] = ("h1", "h2"),
) -> Iterator[Probe]:
    """A fresh server, warmed up, with canaries running and its memory watched.

    The canaries and the memory watch stop when the block ends; the server then
    stops too, so read what you need from it (``stats()``) inside the block.
    """
    with run_server(world, limits, h2_settings) as server:
        server.warm_up()
        with contextlib.ExitStack() as stack:
            running = [
                stack.enter_context(Canary(server.url, http2=kind == "h2")) for kind in canaries
            ]
            time.sleep(0.2)  # the canaries' connections are part of the baseline
            memory = stack.enter_context(MemoryWatch(server))
            yield Probe(server, memory, running)


@dataclass
class H2Probe:
    server: ServerProcess
    checks: Checks
    peer: H2Peer


@contextlib.contextmanager
def h2_probe(
    world: str,
    title: str,
    limits: dict[str, Any] | None = None,
    h2_settings: dict[str, Any] | None = None,
    rcvbuf: int | None = None,
    send_timeout: float = 5.0,
) -> Iterator[H2Probe]:
    """``probing`` plus one raw HTTP/2 peer that did its handshake, and the checks.

    On leaving (without an error), the checks also get the memory bound and the
    canaries (``Checks.healthy``); call ``checks.verify()`` after the block.
    """
    checks = Checks(f"{title} [{world}]")
    with probing(world, limits, h2_settings) as probe:
        with H2Peer(probe.server.address, rcvbuf=rcvbuf, send_timeout=send_timeout) as peer:
            peer.handshake()
            yield H2Probe(probe.server, checks, peer)
    checks.healthy(probe.memory, probe.canaries)


# -- raw HTTP/2 -------------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM = ACK = 0x1
END_HEADERS = 0x4

SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
MAX_WINDOW = 2**31 - 1


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """A frame built byte by byte: for the frames hyperframe would refuse to build."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + (stream_id & MAX_WINDOW).to_bytes(4, "big")
        + payload
    )


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """An HPACK block that neither uses nor changes the dynamic table, so the same
    bytes can be sent any number of times, on any stream."""
    encoder = hpack.Encoder()
    return encoder.encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in headers])


def request_fields(
    authority: str, path: str = "/", method: str = "GET", extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    return [
        (":method", method),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
        *extra,
    ]


def headers_frame(stream_id: int, block: bytes, end_stream: bool = True) -> bytes:
    flags = ["END_HEADERS", "END_STREAM"] if end_stream else ["END_HEADERS"]
    return hf.HeadersFrame(stream_id, data=block, flags=flags).serialize()


def rst_frame(stream_id: int, code: int = ErrorCodes.CANCEL) -> bytes:
    return hf.RstStreamFrame(stream_id, error_code=code).serialize()


def window_update(stream_id: int, increment: int) -> bytes:
    return hf.WindowUpdateFrame(stream_id, window_increment=increment).serialize()


def settings_frame(settings: dict[int, int] | None = None) -> bytes:
    return hf.SettingsFrame(0, settings=settings or {}).serialize()


def error_name(code: int | None) -> str:
    if code is None:
        return "none"
    try:
        return f"{ErrorCodes(code).name}(0x{code:x})"
    except ValueError:
        return f"0x{code:x}"


@dataclass
class GoAway:
    error_code: int
    last_stream_id: int
    debug: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class Outcome:
    """What the server did to one raw HTTP/2 connection, as read by our peer."""

    t0: float = field(default_factory=time.monotonic)  # the attack's start (``mark``)
    goaways: list[GoAway] = field(default_factory=list)
    how: str = "open"  # "eof", "reset" (ECONNRESET), or "open" (still open at the end)
    closed_at: float | None = None
    bytes_received: int = 0
    frames: Counter[str] = field(default_factory=Counter)
    rst: dict[int, int] = field(default_factory=dict)  # stream -> its RST_STREAM code
    rst_codes: Counter[int] = field(default_factory=Counter)  # code -> RST_STREAMs
    status: dict[int, int] = field(default_factory=dict)  # stream -> :status
    data: Counter[int] = field(default_factory=Counter)  # stream -> DATA bytes
    ended: set[int] = field(default_factory=set)  # streams the server ended
    settings_acks: int = 0
    ping_acks: int = 0
    server_settings: dict[int, int] | None = None  # all the server's SETTINGS merged
    settings_frames: int = 0  # SETTINGS frames (not acks) from the server
    parse_error: str | None = None
    bytes_sent: int = 0
    send_stopped: str | None = None  # why our sending stopped early, if it did

    def mark(self) -> None:
        self.t0 = time.monotonic()

    @property
    def ended_by_server(self) -> bool:
        return self.closed_at is not None

    @property
    def cut_off(self) -> bool:
        """The server ended the connection or at least said GOAWAY."""
        return self.ended_by_server or bool(self.goaways)

    @property
    def goaway(self) -> GoAway | None:
        """The last GOAWAY (the one that carries the reason of the end)."""
        return self.goaways[-1] if self.goaways else None

    def goaway_codes(self) -> list[int]:
        return [g.error_code for g in self.goaways]

    def cut_off_after(self) -> float | None:
        """Seconds from ``mark`` to the first GOAWAY or to the close, if any."""
        times = [g.at for g in self.goaways[:1]]
        if self.closed_at is not None:
            times.append(self.closed_at)
        return min(times) - self.t0 if times else None

    @property
    def rst_count(self) -> int:
        return sum(self.rst_codes.values())

    def describe(self) -> str:
        parts = [
            "GOAWAY "
            + ",".join(f"{error_name(g.error_code)} last={g.last_stream_id}" for g in self.goaways)
            if self.goaways
            else "no GOAWAY"
        ]
        after = self.cut_off_after()
        parts.append(
            f"connection {self.how}" + (f" after {after:.2f} s" if after is not None else "")
        )
        if self.rst_codes:
            codes = ", ".join(f"{error_name(c)} x{n}" for c, n in sorted(self.rst_codes.items()))
            parts.append(f"RST_STREAM {codes}")
        if self.status:
            statuses = Counter(self.status.values())
            parts.append("responses " + ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items())))
        parts.append(f"received {self.bytes_received} B, sent {self.bytes_sent} B")
        if self.send_stopped:
            parts.append(f"sending stopped: {self.send_stopped}")
        if self.parse_error:
            parts.append(f"unparsable reply: {self.parse_error}")
        return "; ".join(parts)


class H2Peer:
    """A hand-driven HTTP/2 client connection for attacks.

    ``send`` writes raw bytes (built with ``frame``/hyperframe); the replies are
    parsed into ``outcome``, either by a background reader (``start_reader``) or
    only at the end (``finish``), for a peer that does not read while it floods.
    ``rcvbuf`` shrinks SO_RCVBUF before connecting (a peer that does not read
    then fills up quickly). Only this object's thread sends; the reader only reads.
    """

    def __init__(
        self,
        address: tuple[str, int],
        *,
        rcvbuf: int | None = None,
        send_timeout: float = 5.0,
    ) -> None:
        self.address = address
        self.authority = f"{address[0]}:{address[1]}"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(send_timeout)
        sock.connect(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.outcome = Outcome()
        self._buffer = b""
        self._block: dict[int, bytes] = {}  # header block being continued, per stream
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = 1 << 30
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()

    # -- sending

    def send(self, data: bytes) -> bool:
        """Write ``data``; False (and ``outcome.send_stopped`` says why) once the
        server no longer takes bytes: it closed, reset, or stopped reading for
        ``send_timeout``."""
        if self.outcome.send_stopped is not None:
            return False
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.outcome.send_stopped = "blocked: the server stopped reading"
            return False
        except OSError as exc:
            self.outcome.send_stopped = f"{type(exc).__name__}: {exc}"
            return False
        self.outcome.bytes_sent += len(data)
        return True

    def handshake(self, settings: dict[int, int] | None = None, timeout: float = 3.0) -> None:
        """Preface and SETTINGS; wait for the server's SETTINGS and acknowledge them,
        as a real client does (so the server's limits are in force)."""
        self.send(PREFACE + settings_frame(settings))
        deadline = time.monotonic() + timeout
        while self.outcome.server_settings is None and not self.outcome.ended_by_server:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._read_some(min(left, 0.1))
        if self.outcome.server_settings is None:
            raise AssertionError(f"no SETTINGS from the server: {self.outcome.describe()}")
        # The server may send its SETTINGS as several frames (hyperpy sends h2's
        # defaults, then its own limits): take what follows at once, ack them all.
        self._read_some(0.05)
        ack = hf.SettingsFrame(0, flags=["ACK"]).serialize()
        self.send(ack * self.outcome.settings_frames)

    def request(
        self,
        stream_id: int,
        path: str = "/",
        method: str = "GET",
        end_stream: bool = True,
        authority: str | None = None,
    ) -> bool:
        fields = request_fields(authority or self.authority, path, method)
        return self.send(headers_frame(stream_id, header_block(fields), end_stream))

    # -- reading

    def _read_some(self, timeout: float) -> None:
        if self.outcome.ended_by_server:
            return
        try:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self._ended("reset")
            return
        except OSError as exc:
            self._ended(f"error {exc.errno}")
            return
        if not data:
            self._ended("eof")
            return
        with self._cond:
            self.outcome.bytes_received += len(data)
            self._buffer += data
            self._parse()
            self._cond.notify_all()

    def _ended(self, how: str) -> None:
        with self._cond:
            self.outcome.how = how
            self.outcome.closed_at = time.monotonic()
            self._cond.notify_all()

    def _parse(self) -> None:
        out = self.outcome
        buffer = self._buffer
        pos = 0
        while len(buffer) - pos >= 9 and out.parse_error is None:
            length = int.from_bytes(buffer[pos : pos + 3], "big")
            if len(buffer) - pos < 9 + length:
                break
            try:
                parsed, _ = hf.Frame.parse_frame_header(memoryview(buffer[pos : pos + 9]))
                parsed.parse_body(memoryview(buffer[pos + 9 : pos + 9 + length]))
            except Exception as exc:
                out.parse_error = f"{type(exc).__name__}: {exc}"
                break
            pos += 9 + length
            self._on_frame(parsed)
        self._buffer = buffer[pos:]

    def _on_frame(self, parsed: hf.Frame) -> None:
        out = self.outcome
        out.frames[type(parsed).__name__] += 1
        sid = parsed.stream_id
        if isinstance(parsed, hf.DataFrame):
            out.data[sid] += len(parsed.data)
            if "END_STREAM" in parsed.flags:
                out.ended.add(sid)
        elif isinstance(parsed, (hf.HeadersFrame, hf.ContinuationFrame)):
            block = self._block.pop(sid, b"") + parsed.data
            if "END_HEADERS" not in parsed.flags:
                self._block[sid] = block
            else:
                try:
                    fields = self._decoder.decode(block, raw=True)
                except Exception as exc:
                    out.parse_error = f"HPACK: {type(exc).__name__}: {exc}"
                    fields = []
                for name, value in fields:
                    if name == b":status":
                        out.status.setdefault(sid, int(value))
            if "END_STREAM" in parsed.flags:
                out.ended.add(sid)
        elif isinstance(parsed, hf.RstStreamFrame):
            out.rst[sid] = parsed.error_code
            out.rst_codes[parsed.error_code] += 1
        elif isinstance(parsed, hf.GoAwayFrame):
            out.goaways.append(
                GoAway(
                    parsed.error_code,
                    parsed.last_stream_id,
                    parsed.additional_data,
                    time.monotonic(),
                )
            )
        elif isinstance(parsed, hf.SettingsFrame):
            if "ACK" in parsed.flags:
                out.settings_acks += 1
            else:
                out.settings_frames += 1
                out.server_settings = {**(out.server_settings or {}), **parsed.settings}
        elif isinstance(parsed, hf.PingFrame) and "ACK" in parsed.flags:
            out.ping_acks += 1

    def start_reader(self) -> None:
        """Read and parse the server's frames in the background from now on."""
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name="h2-reader")
        self._reader.start()

    def _read_loop(self) -> None:
        while not self._stop.is_set() and not self.outcome.ended_by_server:
            self._read_some(0.05)

    def wait_for(self, predicate: Callable[[Outcome], bool], timeout: float) -> bool:
        """Wait (the reader must run) until ``predicate(outcome)`` or ``timeout``."""
        assert self._reader is not None, "start_reader() first"
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.outcome), timeout)

    def finish(self, timeout: float) -> Outcome:
        """Read until the server ends the connection or ``timeout``; the outcome."""
        deadline = time.monotonic() + timeout
        if self._reader is not None:
            with self._cond:
                self._cond.wait_for(lambda: self.outcome.ended_by_server, timeout)
            self._stop.set()
            self._reader.join(2)
            self._reader = None
        while not self.outcome.ended_by_server:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._read_some(min(left, 0.1))
        return self.outcome

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(2)
        self.sock.close()

    def __enter__(self) -> H2Peer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- raw HTTP/1.1 -------------------------------------------------------------------------------


@dataclass
class H1Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class H1Result:
    raw: bytes
    how: str  # "eof", "reset", or "open" (still open at the deadline)
    elapsed: float  # seconds from the first byte sent to the end (or deadline)
    responses: list[H1Response]
    rest: bytes  # bytes after the last complete response (or after a 101)

    @property
    def closed(self) -> bool:
        return self.how != "open"

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    def describe(self) -> str:
        return (
            f"statuses {self.statuses}, connection {self.how} after {self.elapsed:.2f} s,"
            f" {len(self.raw)} B received"
            + (f", {len(self.rest)} B unparsed: {self.rest[:60]!r}" if self.rest else "")
        )


def h1_connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_close(
    sock: socket.socket, deadline: float, enough: Callable[[bytes], bool] | None = None
) -> tuple[bytes, str]:
    """Everything the peer sends until it closes (EOF or reset), the monotonic
    ``deadline``, or ``enough(received)``; and how it ended ("eof", "reset",
    "open")."""
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or (enough is not None and enough(received)):
            return received, "open"
        ready, _, _ = select.select([sock], [], [], min(left, 0.05))
        if not ready:
            continue
        try:
            data = sock.recv(262144)
        except OSError:  # ECONNRESET, mostly
            return received, "reset"
        if not data:
            return received, "eof"
        received += data


def h1_exchange(
    address: tuple[str, int],
    data: bytes,
    timeout: float = 3.0,
    stop_after: int | None = None,
) -> H1Result:
    """Send ``data`` on a new connection, read until the server closes, or
    ``timeout``, or (if given) ``stop_after`` complete responses arrived; parse
    the responses."""

    def enough(received: bytes) -> bool:
        assert stop_after is not None
        responses, _ = parse_responses(received)
        return len(responses) >= stop_after or any(r.status == 101 for r in responses)

    with h1_connect(address) as sock:
        start = time.monotonic()
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may close early: what it answered is still readable
        raw, how = read_until_close(sock, start + timeout, enough if stop_after else None)
        elapsed = time.monotonic() - start
    responses, rest = parse_responses(raw)
    return H1Result(raw, how, elapsed, responses, rest)


def parse_responses(raw: bytes) -> tuple[list[H1Response], bytes]:
    """The complete HTTP/1.1 responses at the start of ``raw`` (bodies framed by
    Content-Length, chunked, or the close); parsing stops after a 101."""
    responses: list[H1Response] = []
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = raw[pos:end].decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            break
        headers = [
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        ]
        response = H1Response(status, headers, b"")
        body_start = end + 4
        if status == 101:
            responses.append(response)
            return responses, raw[body_start:]
        if 100 <= status < 200 or status in (204, 304):
            responses.append(response)
            pos = body_start
            continue
        encoding = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if "chunked" in encoding:
            body, after = _dechunk(raw, body_start)
            if after is None:
                break
            response.body = body
            pos = after
        elif length is not None:
            size = int(length)
            if len(raw) < body_start + size:
                break
            response.body = raw[body_start : body_start + size]
            pos = body_start + size
        else:
            response.body = raw[body_start:]
            pos = len(raw)
        responses.append(response)
    return responses, raw[pos:]


def _dechunk(raw: bytes, pos: int) -> tuple[bytes, int | None]:
    body: list[bytes] = []
    while True:
        line_end = raw.find(b"\r\n", pos)
        if line_end < 0:
            return b"", None
        try:
            size = int(raw[pos:line_end].split(b";")[0], 16)
        except ValueError:
            return b"", None  # not chunked framing after all: left unparsed
        pos = line_end + 2
        if size == 0:
            trailer_end = raw.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return b"", None
            return b"".join(body), trailer_end + 4
        if len(raw) < pos + size + 2:
            return b"", None
        body.append(raw[pos : pos + size])
        pos += size + 2


@dataclass
class Drip:
    """How a server treated a peer that sends one byte at a time."""

    sent: int  # bytes sent
    how: str  # "eof", "reset", "send failed", or "open" (never closed)
    closed_after: float | None  # seconds from the first byte to the close
    received: bytes

    def describe(self) -> str:
        after = f" after {self.closed_after:.2f} s" if self.closed_after is not None else ""
        received = repr(self.received[:60])
        return f"{self.sent} B dripped; connection {self.how}{after}; received {received}"


def drip(sock: socket.socket, data: bytes, interval: float, seconds: float) -> Drip:
    """Send ``data`` one byte every ``interval`` seconds, for at most ``seconds``,
    watching for the server to close the connection in between."""
    start = time.monotonic()
    received = b""
    sent = 0
    for i in range(len(data)):
        if time.monotonic() - start > seconds:
            break
        try:
            sock.sendall(data[i : i + 1])
        except OSError:
            return Drip(sent, "send failed", time.monotonic() - start, received)
        sent += 1
        wake = time.monotonic() + interval
        while (left := wake - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                chunk = sock.recv(65536)
            except OSError:
                return Drip(sent, "reset", time.monotonic() - start, received)
            if not chunk:
                return Drip(sent, "eof", time.monotonic() - start, received)
            received += chunk
    return Drip(sent, "open", None, received)
