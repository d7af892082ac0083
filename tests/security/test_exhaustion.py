"""Connection-slot exhaustion by idle connections, against both servers.

With ``max_connections`` lowered to 100 (default 1000), a peer opens 200
connections and leaves them idle; then a newcomer must still be served within
1 s. Refusing or queueing newcomers behind idle connections lets anyone with a
few hundred sockets take the server down (the Slowloris family, CVE-2007-6750;
RFC 9112 §9.5 lets a server close idle connections at any time, and RFC 9113
§6.8 with a GOAWAY for HTTP/2). The expected policy: past the limit, shed idle
connections oldest-first to make room.

* ``silent``: TCP connections that never send a byte (still in protocol
  detection; ``header_read_timeout`` keeps its 30 s default, so only shedding
  can free the slots in time);
* ``keep-alive``: HTTP/1.1 connections that completed one request and idle in
  keep-alive (``keep_alive_timeout`` raised to 30 s from its 5 s default, for
  the same reason);
* ``h2-idle``: HTTP/2 connections that sent the preface and SETTINGS, then
  nothing.
"""

from __future__ import annotations

import select
import socket
import time

import pytest

from .harness import PREFACE, Checks, h1_exchange, run_server, settings_frame

MAX_CONNECTIONS = 100  # ServerLimits default: 1000
IDLE = 2 * MAX_CONNECTIONS
LIMITS = {
    "max_connections": MAX_CONNECTIONS,
    "keep_alive_timeout": 30.0,  # default 5 s
    "header_read_timeout": 30.0,  # the default
}
NEWCOMERS = 5
NEWCOMER_BOUND = 1.0
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _served_keep_alive(socks: list[socket.socket], seconds: float) -> int:
    """Read the answers to GET on every socket; how many got theirs in time."""
    pending = {s.fileno(): s for s in socks}
    got = dict.fromkeys(pending, b"")
    served = 0
    deadline = time.monotonic() + seconds
    while pending and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(list(pending.values()), [], [], min(left, 0.1))
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            fd = sock.fileno()
            got[fd] += data
            if got[fd].endswith(b"Hello, world!"):
                served += 1
                del pending[fd]
            elif not data:
                del pending[fd]
    return served


@pytest.mark.parametrize("kind", ["silent", "keep-alive", "h2-idle"])
def test_idle_connections_do_not_lock_out_newcomers(world: str, kind: str) -> None:
    checks = Checks(f"{IDLE} idle {kind} connections [{world}]")
    socks: list[socket.socket] = []
    try:
        with run_server(world, LIMITS) as server:
            for _ in range(IDLE):
                sock = socket.create_connection(server.address, timeout=2)
                socks.append(sock)
                if kind == "keep-alive":
                    sock.sendall(GET)
                elif kind == "h2-idle":
                    sock.sendall(PREFACE + settings_frame())
            if kind == "keep-alive":
                served = _served_keep_alive(socks, 5.0)
                checks.note(f"{served} of {IDLE} keep-alive requests answered within 5 s")
                checks.expect(served == IDLE, f"only {served} of {IDLE} requests answered")
            else:
                time.sleep(0.5)
            results = []
            for _ in range(NEWCOMERS):
                request = GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
                result = h1_exchange(server.address, request, timeout=3.0, stop_after=1)
                results.append(result)
                if result.statuses != [200]:
                    break  # locked out: the next ones would wait just as long
            alive = sum(1 for s in socks if _still_open(s))
    finally:
        for sock in socks:
            sock.close()
    worst = max(r.elapsed for r in results)
    checks.note(
        f"newcomers: {[r.statuses for r in results]}, worst {worst:.2f} s;"
        f" {alive} of the {IDLE} idle connections still open at the end"
    )
    checks.expect(
        all(r.statuses == [200] for r in results) and len(results) == NEWCOMERS,
        "a newcomer was not served",
    )
    checks.expect(worst < NEWCOMER_BOUND, f"a newcomer waited {worst:.2f} s")
    checks.verify()


def _still_open(sock: socket.socket) -> bool:
    """Not closed by the server (no EOF or reset pending)."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        if not ready:
            return True
        sock.setblocking(False)
        while True:
            data = sock.recv(65536)
            if not data:
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False
