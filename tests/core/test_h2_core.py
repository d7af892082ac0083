"""Unit tests of the sans-IO HTTP/2 layer (``hyperpy._core.h2``): no sockets.

The peer is a real h2 ``H2Connection``; bytes are handed back and forth in memory.
"""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.events
import pytest
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyperpy import H2Settings, RemoteProtocolError
from hyperpy._core.h2 import PREFACE, ErrorCodes, H2Protocol
from hyperpy._core.h2_frames import FrameGuard, ProtocolViolation
from hyperpy._core.h2_heads import (
    request_head,
    request_headers,
    response_headers,
    response_status,
)

SEED = 20240611


# -- helpers ----------------------------------------------------------------------


def _header(kind: int, payload: bytes, stream_id: int = 0, flags: int = 0) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")


def _goaway(last_stream_id: int, code: int = 0, debug: bytes = b"") -> bytes:
    frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code, additional_data=debug)
    return frame.serialize()


def _random_frames(rng: random.Random, count: int) -> list[tuple[bytes, bool]]:
    """An empty SETTINGS frame, then ``count`` raw frames of assorted types and sizes
    (header blocks whole); True marks a GOAWAY."""
    frames = [(_header(0x4, b""), False)]
    for _ in range(count):
        kind = rng.choice([0x0, 0x0, 0x1, 0x6, 0x8, 0x7])
        if kind == 0x7:
            debug = rng.randbytes(rng.choice([0, 1, 7, 300]))
            frames.append((_goaway(rng.randrange(0, 99, 2) + 1, rng.randrange(3), debug), True))
            continue
        size = rng.choice([0, 1, 8, 9, 10, 100, 5000, 16000])
        payload = rng.randbytes(size)
        flags = 0x4 if kind == 0x1 else 0  # HEADERS: END_HEADERS
        header = _header(kind, payload, stream_id=rng.randrange(1, 9, 2), flags=flags)
        frames.append((header + payload, False))
    return frames


def _cuts(rng: random.Random, data: bytes, max_piece: int) -> list[bytes]:
    pieces = []
    pos = 0
    while pos < len(data):
        size = rng.randint(1, max_piece)
        pieces.append(data[pos : pos + size])
        pos += size
    return pieces


def _merge(tokens: list[tuple[bytes, bool]]) -> list[tuple[bytes, bool]]:
    """Join consecutive pass-through runs: how they are cut is not the contract."""
    merged: list[tuple[bytes, bool]] = []
    run: list[bytes] = []
    for data, is_goaway in tokens:
        if not is_goaway:
            run.append(bytes(data))
            continue
        if any(run):
            merged.append((b"".join(run), False))
        run = []
        merged.append((bytes(data), True))
    if any(run):
        merged.append((b"".join(run), False))
    return merged


def _parse_frames(data: bytes) -> list[Frame]:
    frames = []
    view = memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


def _window_updates(data: bytes) -> list[tuple[int, int]]:
    """(stream id, increment) of every WINDOW_UPDATE in ``data``."""
    return [
        (f.stream_id, f.window_increment)
        for f in _parse_frames(data)
        if isinstance(f, WindowUpdateFrame)
    ]


def _connected(settings: H2Settings) -> tuple[H2Protocol, h2.connection.H2Connection]:
    """A client H2Protocol and an h2 server, past the preface and SETTINGS exchange."""
    client = H2Protocol(client_side=True, settings=settings)
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    client.start()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive(server.data_to_send())
    server.receive_data(client.data_to_send())  # the client's SETTINGS ack
    client.receive(server.data_to_send())
    client.data_to_send()
    return client, server


def _get(client: H2Protocol, path: str = "/") -> int:
    headers = request_headers("GET", "http", "example.org", path, [])
    return client.open_stream(headers, end_stream=True)


# -- the frame guard: GOAWAY interception ----------------------------------------


def _guard(client_side: bool = True, settings: H2Settings | None = None) -> FrameGuard:
    return FrameGuard(client_side, settings or H2Settings(), len(PREFACE))


@pytest.mark.parametrize("client_side", [True, False])
def test_split_intercepts_goaway_across_any_read_boundaries(client_side: bool) -> None:
    rng = random.Random(SEED)
    for _ in range(40):
        frames = _random_frames(rng, rng.randint(1, 16))
        prefix = b"" if client_side else PREFACE
        data = prefix + b"".join(raw for raw, _ in frames)
        # What h2 must see (the preface and every frame but GOAWAY, in order) and
        # the GOAWAY payloads, each in its place between them.
        expected = _merge(
            [(prefix, False)] + [(raw[9:], True) if g else (raw, False) for raw, g in frames]
        )
        # Where the frame headers h2 sees lie, in pass-through coordinates.
        inside_header: set[int] = set()
        pos = len(prefix)
        for raw, is_goaway in frames:
            if not is_goaway:
                inside_header.update(range(pos + 1, pos + 9))
                pos += len(raw)
        for max_piece in (1, 2, 9, 10, 64, 5000, len(data)):
            if max_piece < 9 and len(data) > 20000:
                continue  # byte by byte through big frames: slow, and nothing new
            guard = _guard(client_side)
            tokens: list[tuple[bytes, bool]] = []
            passed = 0
            for piece in _cuts(rng, data, max_piece):
                for out, is_goaway in guard.split(piece, 0.0):
                    tokens.append((bytes(out), is_goaway))
                    if not is_goaway:
                        passed += len(out)
                # h2 is never handed part of a frame header.
                assert passed not in inside_header
            assert _merge(tokens) == expected
            assert guard._header == b"" and guard._goaway_left == 0 and guard._skip == 0


def test_split_passes_a_buffer_without_goaway_whole() -> None:
    data = (
        _header(0x4, b"")
        + _header(0x6, b"12345678")
        + b"12345678"
        + _header(0x0, b"")
        + _header(0x0, b"x")
        + b"x"
    )
    guard = _guard()
    [(out, is_goaway)] = guard.split(data, 0.0)
    assert out == data and not is_goaway
    # A frame payload spanning reads passes through as it comes.
    [(out, _)] = guard.split(_header(0x0, b"p" * 100) + b"p" * 40, 0.0)
    assert out == _header(0x0, b"p" * 100) + b"p" * 40
    middle = b"p" * 50
    [(out, _)] = guard.split(middle, 0.0)
    assert out is middle


def test_split_rejects_huge_goaway() -> None:
    guard = _guard()
    guard.split(_header(0x4, b""), 0.0)
    header = (70 * 1024).to_bytes(3, "big") + bytes([0x7, 0]) + bytes(4)
    with pytest.raises(ProtocolViolation) as info:
        guard.split(header, 0.0)
    assert info.value.code == ErrorCodes.FRAME_SIZE_ERROR


def test_malformed_goaway_is_a_protocol_error() -> None:
    client, _ = _connected(H2Settings())
    with pytest.raises(RemoteProtocolError):
        client.receive(_header(0x7, b"1234") + b"1234")


def test_goaway_mid_stream_keeps_lower_streams_alive_across_read_boundaries() -> None:
    """Through ``receive``: frames after a GOAWAY still complete streams at or below
    its last-stream-id, whatever the read boundaries; streams above it are refused."""
    rng = random.Random(SEED + 1)
    for _ in range(30):
        client, server = _connected(H2Settings())
        sids = [_get(client, f"/{n}") for n in range(3)]
        assert sids == [1, 3, 5]
        server.receive_data(client.data_to_send())
        server.send_headers(1, [(":status", "200")])
        first = server.data_to_send()
        server.send_data(1, b"x" * 3000)
        server.send_headers(3, [(":status", "204")], end_stream=True)
        server.send_data(1, b"y" * 2000, end_stream=True)
        rest = server.data_to_send()
        wire = first + _goaway(3, debug=b"bye") + rest
        changes = []
        for piece in _cuts(rng, wire, rng.choice([1, 3, 9, 17, 100, 4096])):
            changes.append(client.receive(piece))
        goaway = client.goaway_received
        assert goaway is not None
        assert (goaway.last_stream_id, goaway.error_code, goaway.debug) == (3, 0, b"bye")
        assert sum(c.goaway is not None for c in changes) == 1
        assert not client.accepting_streams
        assert client.streams[5].refused
        assert not client.streams[1].refused and not client.streams[3].refused
        assert client.streams[3].headers is not None and client.streams[3].ended
        body = b""
        while (chunk := client.read(1)) is not None:
            body += chunk
        assert body == b"x" * 3000 + b"y" * 2000
        assert client.streams[1].ended
        assert client.failure_reason is None


# -- flow control: credit follows consumption -------------------------------------------


def test_stream_credit_returns_only_as_read_in_quarter_window_batches() -> None:
    window = 65536
    client, server = _connected(H2Settings(initial_window_size=window))
    sid = _get(client)
    server.receive_data(client.data_to_send())
    server.send_headers(sid, [(":status", "200")])
    for _ in range(window // 4096):
        server.send_data(sid, b"z" * 4096)
    assert server.local_flow_control_window(sid) == 0
    client.receive(server.data_to_send())
    assert client.streams[sid].buffered == window
    # Receiving returns no stream credit: only consumption does.
    assert [u for u in _window_updates(client.data_to_send()) if u[0] == sid] == []
    to_server = b""
    for index in range(window // 4096):
        assert client.read(sid) == b"z" * 4096
        out = client.data_to_send()
        to_server += out
        sent = _window_updates(out)
        assert all(s == sid for s, _ in sent)  # the connection's credit came on receipt
        # One WINDOW_UPDATE per quarter window, not one per frame read.
        if (index + 1) % 4:
            assert sent == []
        else:
            assert sent == [(sid, window // 4)]
    assert client.read(sid) is None
    server.receive_data(to_server)
    assert server.local_flow_control_window(sid) == window


def test_no_stream_credit_after_the_stream_ended() -> None:
    client, server = _connected(H2Settings(initial_window_size=65536))
    sid = _get(client)
    server.receive_data(client.data_to_send())
    server.send_headers(sid, [(":status", "200")])
    for index in range(8):
        server.send_data(sid, b"e" * 4096, end_stream=index == 7)
    client.receive(server.data_to_send())
    client.data_to_send()
    while client.read(sid) is not None:
        pass
    assert [u for u in _window_updates(client.data_to_send()) if u[0] == sid] == []


def test_connection_credit_is_batched_and_bounded() -> None:
    """Many small DATA frames: connection credit comes a quarter window at a time
    (never one WINDOW_UPDATE per frame, which lets a sender shrink its frames to a
    few bytes); past the connection window, only consumption returns it."""
    window = 65535
    client, server = _connected(
        H2Settings(initial_window_size=window, connection_window_size=window)
    )
    sids = [_get(client, "/a"), _get(client, "/b")]
    server.receive_data(client.data_to_send())
    for sid in sids:
        server.send_headers(sid, [(":status", "200")])
    client.receive(server.data_to_send())
    assert _window_updates(client.data_to_send()) == []
    # Stream 1 fills its window in 1000-byte frames.
    sent = 0
    while server.local_flow_control_window(1) > 0:
        size = min(1000, server.local_flow_control_window(1))
        server.send_data(1, b"a" * size)
        sent += size
        client.receive(server.data_to_send())
        updates = _window_updates(client.data_to_send())
        assert all(sid == 0 and inc >= window // 4 for sid, inc in updates), updates
        server.receive_data(b"".join(WindowUpdateFrame(s, i).serialize() for s, i in updates))
    assert sent == window
    assert client._total_buffered == window
    # Stream 3 arrives while stream 1 is unread: no credit at all, so the connection's
    # buffering stops at about two windows.
    while server.local_flow_control_window(3) > 0:
        size = min(1000, server.local_flow_control_window(3))
        server.send_data(3, b"b" * size)
        client.receive(server.data_to_send())
        assert _window_updates(client.data_to_send()) == []
    assert window < client._total_buffered <= 2 * window
    # Consuming stream 1 brings the credit back, in batches again.
    given = 0
    while (chunk := client.read(1)) is not None:
        assert chunk == b"a" * len(chunk)
        for sid, increment in _window_updates(client.data_to_send()):
            assert increment >= window // 4
            if sid == 0:
                given += increment
    assert given >= window - window // 4


def test_flow_control_never_deadlocks_and_bounds_buffering() -> None:
    """Random frame sizes, random reads: every byte arrives, buffers stay within the
    windows, and every WINDOW_UPDATE is a batch."""
    rng = random.Random(SEED + 2)
    window = 65535
    settings = H2Settings(initial_window_size=window, connection_window_size=window)
    for _ in range(5):
        client, server = _connected(settings)
        sizes = {_get(client, f"/{n}"): rng.randint(100_000, 400_000) for n in range(3)}
        server.receive_data(client.data_to_send())
        left = dict(sizes)
        got = dict.fromkeys(sizes, 0)
        for sid in sizes:
            server.send_headers(sid, [(":status", "200")])
        for _step in range(5000):
            for sid in sizes:
                while left[sid]:
                    size = min(
                        rng.randint(1, 16384), left[sid], server.local_flow_control_window(sid)
                    )
                    if size <= 0:
                        break
                    left[sid] -= size
                    server.send_data(sid, b"d" * size, end_stream=not left[sid])
            client.receive(server.data_to_send())
            assert all(s.buffered <= window for s in client.streams.values())
            assert client._total_buffered <= 2 * window
            for sid, increment in _window_updates(client.data_to_send()):
                assert sid == 0 and increment >= window // 4  # receipt: connection only
                server.receive_data(WindowUpdateFrame(sid, increment).serialize())
            sid = rng.choice(list(sizes))
            for _ in range(rng.randint(0, 6)):
                chunk = client.read(sid)
                if chunk is None:
                    break
                got[sid] += len(chunk)
            for stream_id, increment in _window_updates(client.data_to_send()):
                assert stream_id in (0, sid) and increment >= window // 4
                server.receive_data(WindowUpdateFrame(stream_id, increment).serialize())
            if got == sizes:
                break
        assert got == sizes, "flow control stalled"
        assert all(client.streams[sid].ended for sid in sizes)


def test_ping_is_answered_and_headers_are_not_goaway() -> None:
    """Frame types around GOAWAY are still h2's: PING gets its ACK."""
    client, server = _connected(H2Settings())
    server.ping(b"12345678")
    client.receive(server.data_to_send())
    frames = _parse_frames(client.data_to_send())
    assert any(isinstance(f, PingFrame) and "ACK" in f.flags for f in frames)
    assert not any(isinstance(f, (HeadersFrame, DataFrame, SettingsFrame)) for f in frames)
    assert client.goaway_received is None
    events = server.receive_data(b"".join(f.serialize() for f in frames))
    assert any(isinstance(e, h2.events.PingAckReceived) for e in events)


@pytest.mark.parametrize("how", ["peer-reset", "local-reset", "forget"])
def test_dropped_data_is_credited_to_the_connection_once(how: str) -> None:
    """Data credited on receipt, then dropped unread (a reset, or the application
    forgetting the stream) must not be credited again: each time would grow the
    peer's connection window, and with it what the peer may make us buffer."""
    window = 65535
    client, server = _connected(
        H2Settings(initial_window_size=window, connection_window_size=window)
    )
    received = 0
    credited = 0
    for round_ in range(4):
        sid = _get(client, f"/{round_}")
        server.receive_data(client.data_to_send())
        server.send_headers(sid, [(":status", "200")])
        for _ in range(3):
            server.send_data(sid, b"d" * 10000)
        received += 30000
        if how == "peer-reset":
            server.reset_stream(sid)
        client.receive(server.data_to_send())
        if how == "local-reset":
            client.reset(sid)
        client.forget(sid)
        for stream_id, increment in _window_updates(client.data_to_send()):
            if stream_id == 0:
                credited += increment
                server.receive_data(WindowUpdateFrame(0, increment).serialize())
        owed = client._conn_pending + client._conn_unacked
        assert credited + owed == received, (credited, owed, received)
    assert server.outbound_flow_control_window <= window


def test_request_headers_drop_te_other_than_trailers() -> None:
    client, _ = _connected(H2Settings())
    for value, kept in [(b"gzip", False), (b"trailers", True), (b"Trailers", True)]:
        headers = request_headers("GET", "http", "example.org", "/", [(b"te", value)])
        assert ((b"te", value) in headers) is kept
        client.open_stream(headers, end_stream=True)  # h2 accepts what is left


# -- request and response heads -------------------------------------------------------


def test_request_head_decodes_pseudo_fields() -> None:
    head = request_head(
        [
            (b":method", b"POST"),
            (b":scheme", b"https"),
            (b":authority", b"example.org:8443"),
            (b":path", b"/a?b=c"),
            (b"x-one", b"1"),
        ]
    )
    assert head is not None
    assert (head.method, head.scheme, head.authority, head.path) == (
        "POST",
        "https",
        "example.org:8443",
        "/a?b=c",
    )
    assert head.headers == [(b"x-one", b"1")]


def test_request_head_falls_back_to_host_and_the_connection_scheme() -> None:
    head = request_head([(b":method", b"GET"), (b":path", b"/"), (b"host", b"h:1")])
    assert head is not None
    assert head.authority == "h:1"
    assert head.scheme is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b":path", b"/")],  # no method
        [(b":method", b"GET"), (b":path", b"*")],  # not origin-form
        [(b":method", b"GET")],  # no path
        [(b":method", b"CONNECT"), (b":authority", b"h:443")],
    ],
)
def test_request_head_refuses_what_cannot_be_served(headers: list[tuple[bytes, bytes]]) -> None:
    assert request_head(headers) is None


def test_response_headers_add_date_server_and_length() -> None:
    fields = response_headers(200, [(b"content-type", b"text/plain"), (b"connection", b"x")], 5)
    names = [name for name, _ in fields]
    assert fields[0] == (b":status", b"200")
    assert b"connection" not in names  # connection-specific: not allowed in HTTP/2
    assert names.count(b"date") == names.count(b"server") == 1
    assert (b"content-length", b"5") in fields


def test_response_headers_keep_the_handlers_own_fields() -> None:
    own = [(b"server", b"mine"), (b"date", b"yesterday"), (b"content-length", b"7")]
    fields = response_headers(200, own, 5)
    assert fields[1:] == own
    assert (b"content-length", b"5") not in response_headers(204, [], 5)
    assert all(name != b"content-length" for name, _ in response_headers(200, [], None))


def test_response_status() -> None:
    assert response_status([(b":status", b"404"), (b"x", b"y")]) == (404, [(b"x", b"y")])
    for bad in ([], [(b":status", b"abc")]):
        with pytest.raises(RemoteProtocolError, match=":status"):
            response_status(bad)


def test_a_long_lived_connection_remembers_few_closed_streams() -> None:
    """h2 keeps a record per closed stream; ours stops at 1024, so a connection's
    memory does not grow with every request it ever carried."""
    client, server = _connected(H2Settings())
    for _ in range(1500):
        sid = _get(client)
        server.receive_data(client.data_to_send())
        server.send_headers(sid, [(b":status", b"204")], end_stream=True)
        client.receive(server.data_to_send())
        client.forget(sid)
        client.data_to_send()
    assert len(client.h2._closed_streams) <= 1024
    assert client.h2.open_outbound_streams == 0
