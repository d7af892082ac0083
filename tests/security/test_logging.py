"""Peer misbehaviour must not be logged as a server error, in both worlds.

A server's ERROR log is for its own faults; a client that sends garbage,
vanishes mid-request or mid-handshake is routine on the Internet, and logging
it at ERROR (with a traceback) lets any client flood the logs and hide real
faults (log injection / log flooding, OWASP "Logging Cheat Sheet"; CWE-779,
"Logging of Excessive Data"). Each probe runs the server in this process,
captures every record of the ``hyperpy`` loggers and any exception that
escapes a server thread, and expects no ERROR record and no traceback at
WARNING or above; the server still serves afterwards.

* garbage after the HTTP/2 preface, or garbage in place of an HTTP/1.1 head
  (RFC 9113 §5.4.1: a connection error, answered with GOAWAY, not a fault);
* a TLS client that disconnects right after the handshake, resets, or speaks
  plaintext to the TLS port (RFC 8446 §6);
* a client that resets its connection mid-request or mid-response, over
  HTTP/1.1 and HTTP/2.

``test_handler_error_is_logged`` is the control: a genuine handler error is
logged at ERROR, with its traceback, exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import trio

import hyperpy

from .harness import (
    DATA,
    END_HEADERS,
    HEADERS,
    PREFACE,
    Checks,
    H2Peer,
    frame,
    h1_connect,
    read_until_close,
    settings_frame,
    still_serves,
)
from .serve import threads_app, trio_app

LIMITS = hyperpy.ServerLimits(tls_handshake_timeout=2.0, header_read_timeout=2.0)


class Capture(logging.Handler):
    """Every record of the ``hyperpy`` loggers, and every exception that escaped a
    thread, while active."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.escaped: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextlib.contextmanager
    def active(self) -> Iterator[Capture]:
        logger = logging.getLogger("hyperpy")
        level = logger.level
        hook = threading.excepthook

        def on_thread_exception(args: threading.ExceptHookArgs) -> None:
            self.escaped.append(f"{args.exc_type.__name__}: {args.exc_value}")

        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        threading.excepthook = on_thread_exception
        try:
            yield self
        finally:
            threading.excepthook = hook
            logger.removeHandler(self)
            logger.setLevel(level)

    def errors(self) -> list[str]:
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            + (f" [{r.exc_info[0].__name__}]" if r.exc_info and r.exc_info[0] else "")
            for r in self.records
            if r.levelno >= logging.ERROR or (r.exc_info and r.levelno >= logging.WARNING)
        ]


@contextlib.contextmanager
def inprocess_server(
    world: str, ssl_context: ssl.SSLContext | None, escaped: list[str]
) -> Iterator[tuple[str, tuple[str, int]]]:
    """A server in this process (so its log records can be captured): (url, address)."""
    if world == "threads":
        server = hyperpy.Server(threads_app, port=0, ssl=ssl_context, limits=LIMITS)
        server.start()
        try:
            assert server.address is not None
            yield server.url, server.address
        finally:
            server.stop(grace=1)
        return
    ready: queue.Queue[tuple[str, tuple[str, int], trio.lowlevel.TrioToken, trio.Event]] = (
        queue.Queue()
    )

    async def main() -> None:
        server = hyperpy.AsyncServer(trio_app, port=0, ssl=ssl_context, limits=LIMITS)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            stop = trio.Event()
            assert server.address is not None
            ready.put((server.url, server.address, trio.lowlevel.current_trio_token(), stop))
            await stop.wait()
            await server.shutdown(1)

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # recorded: an error that escaped the server
            escaped.append(f"trio.run: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=run, daemon=True, name="trio-server")
    thread.start()
    url, address, token, stop = ready.get(timeout=10)
    try:
        yield url, address
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(10)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0) rather than a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


GARBAGE = random.Random(20240403).randbytes(4096)
# An undecodable header block first (a connection error the server must answer),
# then random bytes.
H2_GARBAGE = frame(HEADERS, END_HEADERS, 1, b"\xbf\xff\xff\xff\xff") + GARBAGE


def h2_garbage(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    with h1_connect(address) as sock:
        sock.sendall(PREFACE + settings_frame() + H2_GARBAGE)
        read_until_close(sock, time.monotonic() + 3)


def h1_garbage(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    with h1_connect(address) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + GARBAGE + b"\r\n\r\n")
        read_until_close(sock, time.monotonic() + 3)


def h1_reset_mid_request(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    sock = h1_connect(address)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    time.sleep(0.3)
    _reset(sock)


def h1_reset_mid_response(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    sock = h1_connect(address)
    sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (64 * 1024 * 1024))
    sock.recv(65536)
    time.sleep(0.2)
    _reset(sock)


def h2_reset_mid_request(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    peer = H2Peer(address)
    peer.handshake()
    peer.request(1, "/echo", method="POST", end_stream=False)
    peer.send(frame(DATA, 0, 1, b"a" * 1000))
    time.sleep(0.3)
    _reset(peer.sock)


def h2_reset_mid_response(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    peer = H2Peer(address)
    peer.handshake()
    peer.request(1, f"/bytes/{64 * 1024 * 1024}")
    peer.sock.recv(65536)
    time.sleep(0.2)
    _reset(peer.sock)


def _tls(address: tuple[str, int], tls: ssl.SSLContext) -> ssl.SSLSocket:
    return tls.wrap_socket(h1_connect(address), server_hostname="127.0.0.1")


def tls_close_after_handshake(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    _tls(address, tls).close()


def tls_reset_after_handshake(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    _reset(_tls(address, tls))


def tls_reset_during_handshake(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = tls.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    sock = h1_connect(address)
    sock.sendall(hello[: len(hello) // 2])
    time.sleep(0.3)
    _reset(sock)


def tls_plaintext(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    with h1_connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_until_close(sock, time.monotonic() + 3)


def tls_h2_garbage(address: tuple[str, int], tls: ssl.SSLContext) -> None:
    with _tls(address, tls) as sock:
        sock.sendall(PREFACE + settings_frame() + H2_GARBAGE)
        read_until_close(sock, time.monotonic() + 3)


@dataclass(frozen=True)
class Misbehaviour:
    name: str
    act: Callable[[tuple[str, int], ssl.SSLContext], None]
    tls: bool = False


MISBEHAVIOURS = [
    Misbehaviour("h2-garbage", h2_garbage),
    Misbehaviour("h1-garbage", h1_garbage),
    Misbehaviour("h1-reset-mid-request", h1_reset_mid_request),
    Misbehaviour("h1-reset-mid-response", h1_reset_mid_response),
    Misbehaviour("h2-reset-mid-request", h2_reset_mid_request),
    Misbehaviour("h2-reset-mid-response", h2_reset_mid_response),
    Misbehaviour("tls-close-after-handshake", tls_close_after_handshake, tls=True),
    Misbehaviour("tls-reset-after-handshake", tls_reset_after_handshake, tls=True),
    Misbehaviour("tls-reset-during-handshake", tls_reset_during_handshake, tls=True),
    Misbehaviour("tls-plaintext", tls_plaintext, tls=True),
    Misbehaviour("tls-h2-garbage", tls_h2_garbage, tls=True),
]


def _serves(url: str, tls: ssl.SSLContext) -> bool:
    if url.startswith("http://"):
        return still_serves(url)
    with hyperpy.Client(verify=tls, timeout=5) as client:
        return client.get(url + "/").text == "Hello, world!"


@pytest.mark.parametrize("case", MISBEHAVIOURS, ids=lambda m: m.name)
def test_peer_misbehaviour_is_not_an_error(
    world: str,
    case: Misbehaviour,
    server_ssl_context: ssl.SSLContext,
    h2_client_ssl_context: ssl.SSLContext,
) -> None:
    checks = Checks(f"{case.name} [{world}]")
    capture = Capture()
    with capture.active():
        server_tls = server_ssl_context if case.tls else None
        with inprocess_server(world, server_tls, capture.escaped) as (url, address):
            case.act(address, h2_client_ssl_context)
            time.sleep(1.0)  # let the server finish with the peer (and log)
            serves = _serves(url, h2_client_ssl_context)
            found = capture.errors()
            escaped = list(capture.escaped)
    levels: dict[str, int] = {}
    for record in capture.records:
        levels[record.levelname] = levels.get(record.levelname, 0) + 1
    checks.note(f"records by level {levels}; errors {found}; escaped {escaped}")
    checks.expect(not found, f"logged as an error: {found}")
    checks.expect(not escaped, f"exceptions escaped the server: {escaped}")
    checks.expect(serves, "the server no longer serves")
    checks.verify()


def test_handler_error_is_logged(world: str) -> None:
    """The control: a handler that raises is logged at ERROR with its traceback,
    once, and the client gets a 500."""
    checks = Checks(f"handler error [{world}]")
    capture = Capture()
    with capture.active(), inprocess_server(world, None, capture.escaped) as (url, _):
        with hyperpy.Client(timeout=5) as client:
            status = client.get(url + "/boom").status
        time.sleep(0.2)
        errors = [r for r in capture.records if r.levelno >= logging.ERROR]
    checks.note(f"status {status}; {[f'{r.levelname} {r.getMessage()}' for r in errors]}")
    checks.expect(status == 500, f"status {status}, not 500")
    checks.expect(len(errors) == 1, f"{len(errors)} ERROR records, not 1")
    checks.expect(all(r.exc_info for r in errors), "the ERROR record has no traceback")
    checks.verify()
