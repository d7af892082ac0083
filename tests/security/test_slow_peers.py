"""Slow and silent peers that hold server resources, against both servers.

* ``test_slowloris_h1_head``: a request head sent one byte every 0.5 s
  (Slowloris, R. Hansen 2009; CVE-2007-6750): closed within
  ``header_read_timeout`` of its first byte (RFC 9112 §9.5 lets a server close
  idle or slow connections; the 408 is optional).
* ``test_slowloris_h2_preface``: the HTTP/2 connection preface dripped the same
  way (RFC 9113 §3.4): protocol detection must not wait a full timeout per byte.
* ``test_slowloris_h2_headers``: after the preface, a HEADERS frame dripped a byte
  at a time (CVE-2016-1546-like slow HTTP/2 head): the head timeout applies to
  HTTP/2 request heads too.
* ``test_silent_connection``: a connection that never sends a byte: closed at
  the idle timeout (``keep_alive_timeout``), not held for ``header_read_timeout``.
* ``test_idle_keep_alive_h1`` / ``test_idle_h2_connection``: after a complete
  exchange, an idle connection is closed at ``keep_alive_timeout`` (HTTP/2 with
  GOAWAY(NO_ERROR), RFC 9113 §6.8).
* ``test_unread_response_h1`` / ``test_unread_response_h2``: a peer that asks for
  64 MiB and never reads (slow read, "Slow Read" attack, S. Shekyan 2012): the
  write is abandoned and the connection closed within ``write_timeout``.
* ``test_zero_window_stream``: an HTTP/2 stream whose window the peer keeps at
  zero (CVE-2019-9517 "Internal Data Buffering", CVE-2019-9511 family) is reset
  within ``write_timeout`` (the bound on each wait for the peer to take our
  bytes, flow-control credit included), while another stream on the same
  connection is served and the connection stays usable.

Every timeout here is set small through ``ServerLimits`` (defaults in the
comments) so the probes stay fast; each probe gives the server 1 s of slack.
"""

from __future__ import annotations

import socket
import time

from .harness import (
    PREFACE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    Checks,
    H2Peer,
    drip,
    error_name,
    h1_connect,
    h1_exchange,
    header_block,
    headers_frame,
    read_until_close,
    request_fields,
    run_server,
    window_update,
)

HEADER_READ_TIMEOUT = 2.0  # ServerLimits default: 30 s
KEEP_ALIVE_TIMEOUT = 1.0  # ServerLimits default: 5 s
WRITE_TIMEOUT = 1.5  # ServerLimits default: 30 s
LIMITS = {
    "header_read_timeout": HEADER_READ_TIMEOUT,
    "keep_alive_timeout": KEEP_ALIVE_TIMEOUT,
    "write_timeout": WRITE_TIMEOUT,
}
SLACK = 1.0
DRIP_INTERVAL = 0.5
DRIP_SECONDS = HEADER_READ_TIMEOUT + SLACK + 2.0  # past the bound, not much more
BIG = 64 * 1024 * 1024


def _closed_in_time(checks: Checks, after: float | None, bound: float, what: str) -> None:
    checks.expect(
        after is not None and after <= bound + SLACK,
        f"{what}: closed after {after if after is None else round(after, 2)} s"
        f" (bound {bound} s + {SLACK} s)",
    )


def test_slowloris_h1_head(world: str) -> None:
    checks = Checks(f"slowloris h1 head [{world}]")
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 40 + b"\r\n\r\n"
    with run_server(world, LIMITS) as server, h1_connect(server.address) as sock:
        result = drip(sock, head, DRIP_INTERVAL, DRIP_SECONDS)
    checks.note(result.describe())
    _closed_in_time(checks, result.closed_after, HEADER_READ_TIMEOUT, "dripped head")
    checks.verify()


def test_slowloris_h2_preface(world: str) -> None:
    checks = Checks(f"slowloris h2 preface [{world}]")
    with run_server(world, LIMITS) as server, h1_connect(server.address) as sock:
        result = drip(sock, PREFACE, DRIP_INTERVAL, DRIP_SECONDS)
    checks.note(result.describe())
    _closed_in_time(checks, result.closed_after, HEADER_READ_TIMEOUT, "dripped preface")
    checks.verify()


def test_slowloris_h2_headers(world: str) -> None:
    checks = Checks(f"slowloris h2 headers [{world}]")
    with run_server(world, LIMITS) as server, H2Peer(server.address) as peer:
        peer.handshake()
        fields = request_fields(peer.authority, "/", extra=[("x-drip", "a" * 40)])
        result = drip(peer.sock, headers_frame(1, header_block(fields)), 0.5, DRIP_SECONDS)
    checks.note(result.describe())
    _closed_in_time(checks, result.closed_after, HEADER_READ_TIMEOUT, "dripped HEADERS frame")
    checks.verify()


def test_silent_connection(world: str) -> None:
    """A connection that never sends a byte is idle: closed at the idle
    (keep-alive) timeout, here 1 s, not held for the longer head timeout (4 s)."""
    checks = Checks(f"silent connection [{world}]")
    limits = {**LIMITS, "header_read_timeout": 4.0}
    with run_server(world, limits) as server, h1_connect(server.address) as sock:
        start = time.monotonic()
        _, how = read_until_close(sock, start + 4.0 + 2)
        after = time.monotonic() - start if how != "open" else None
    checks.note(f"connection {how} after {after if after is None else round(after, 2)} s")
    _closed_in_time(checks, after, KEEP_ALIVE_TIMEOUT, "silent connection")
    checks.verify()


def test_idle_keep_alive_h1(world: str) -> None:
    checks = Checks(f"idle keep-alive h1 [{world}]")
    with run_server(world, LIMITS) as server, h1_connect(server.address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw, how = read_until_close(sock, time.monotonic() + 3, lambda r: r.endswith(b"world!"))
        answered = time.monotonic()
        checks.expect(raw.endswith(b"Hello, world!"), f"not answered: {raw[:80]!r}")
        _, how = read_until_close(sock, answered + KEEP_ALIVE_TIMEOUT + 4)
        after = time.monotonic() - answered if how != "open" else None
    shown = after if after is None else round(after, 2)
    checks.note(f"after the response, connection {how} after {shown} s")
    _closed_in_time(checks, after, KEEP_ALIVE_TIMEOUT, "idle keep-alive connection")
    checks.verify()


def test_idle_h2_connection(world: str) -> None:
    checks = Checks(f"idle h2 connection [{world}]")
    with run_server(world, LIMITS) as server, H2Peer(server.address) as peer:
        peer.handshake()
        peer.start_reader()
        peer.request(1, "/")
        checks.expect(peer.wait_for(lambda o: 1 in o.ended, 3), "stream 1 not answered")
        peer.outcome.mark()
        outcome = peer.finish(KEEP_ALIVE_TIMEOUT + 4)
    checks.note(outcome.describe())
    after = outcome.closed_at - outcome.t0 if outcome.closed_at is not None else None
    _closed_in_time(checks, after, KEEP_ALIVE_TIMEOUT, "idle HTTP/2 connection")
    checks.expect(
        outcome.goaway_codes()[-1:] == [0],
        f"expected a final GOAWAY(NO_ERROR), got {[error_name(c) for c in outcome.goaway_codes()]}",
    )
    checks.verify()


def test_unread_response_h1(world: str) -> None:
    """GET 64 MiB, read nothing for write_timeout + 2 s, then drain: the response
    must already have been abandoned (it ends short, with the close)."""
    checks = Checks(f"unread response h1 [{world}]")
    with run_server(world, LIMITS) as server:
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(5)
            sock.connect(server.address)
            sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: x\r\n\r\n" % BIG)
            time.sleep(WRITE_TIMEOUT + 2.0)
            start = time.monotonic()
            raw, how = read_until_close(sock, start + 3)
            drained = time.monotonic() - start
        finally:
            sock.close()
    body = len(raw) - raw.find(b"\r\n\r\n") - 4
    checks.note(f"drained {body} B of the {BIG} B body in {drained:.2f} s; connection {how}")
    checks.expect(how != "open", "the connection was still open: the write was not abandoned")
    checks.expect(body < BIG, "the whole response was still delivered: the write waited")
    checks.verify()


def test_unread_response_h2(world: str) -> None:
    """The same over HTTP/2, with every window wide open: only TCP holds the
    server back, and only write_timeout can free it."""
    checks = Checks(f"unread response h2 [{world}]")
    with run_server(world, LIMITS) as server:
        with H2Peer(server.address, rcvbuf=4096) as peer:
            peer.handshake({SETTINGS_INITIAL_WINDOW_SIZE: 2**31 - 1})
            peer.send(window_update(0, 2**31 - 1 - 65535))
            peer.request(1, f"/bytes/{BIG}")
            time.sleep(WRITE_TIMEOUT + 2.0)
            peer.outcome.mark()
            outcome = peer.finish(3)
    checks.note(f"stream 1 got {outcome.data[1]} B; {outcome.describe()}")
    checks.expect(outcome.ended_by_server, "the connection was still open: the write waited")
    checks.expect(outcome.data[1] < BIG, "the whole response was still delivered")
    checks.verify()


def test_zero_window_stream(world: str) -> None:
    """Stream 1 downloads 1 MiB but its window stays at 65,535 (no WINDOW_UPDATE
    for it, plenty for the connection): it is reset within write_timeout of the
    stall, while stream 3 is served meanwhile and stream 5 after."""
    checks = Checks(f"zero window stream [{world}]")
    with run_server(world, LIMITS) as server, H2Peer(server.address) as peer:
        peer.handshake()
        peer.start_reader()
        peer.send(window_update(0, 16 * 1024 * 1024))
        peer.request(1, "/bytes/1048576")
        stalled = peer.wait_for(lambda o: o.data[1] >= 65535, 3)
        stall = time.monotonic()
        checks.expect(stalled, f"stream 1 did not fill its window ({peer.outcome.data[1]} B)")
        peer.request(3, "/")
        peer.wait_for(lambda o: 3 in o.ended or o.cut_off, 2)
        peer.wait_for(lambda o: 1 in o.rst or o.cut_off, WRITE_TIMEOUT + SLACK + 3)
        reset_after = time.monotonic() - stall if 1 in peer.outcome.rst else None
        peer.request(5, "/")
        peer.wait_for(lambda o: 5 in o.ended or o.cut_off, 3)
        outcome = peer.outcome
    checks.note(
        f"stream 1 reset ({error_name(outcome.rst.get(1))}) after {reset_after} s;"
        f" {outcome.describe()}"
    )
    checks.expect(
        outcome.status.get(3) == 200 and outcome.data[3] == 13,
        "stream 3 was not served while stream 1 was stalled",
    )
    _closed_in_time(checks, reset_after, WRITE_TIMEOUT, "stalled stream 1 (reset)")
    checks.expect(outcome.status.get(5) == 200, "stream 5 was not served after the reset")
    checks.expect(not outcome.cut_off, "the connection was ended, not just the stalled stream")
    checks.verify()


def test_h1_exchange_helper_sanity(world: str) -> None:
    """The raw HTTP/1.1 helpers read a normal keep-alive exchange right (guards the
    probes above against a broken harness)."""
    with run_server(world, LIMITS) as server:
        result = h1_exchange(
            server.address,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n",
            stop_after=2,
        )
    assert result.statuses == [200, 200], result.describe()
    assert [r.body for r in result.responses] == [b"Hello, world!", b"xxxxx"]
