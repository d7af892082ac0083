"""Unit tests of hyperpy's HTTP/2 abuse limits (``_core.h2_frames`` and the server
side of ``_core.h2``): no sockets, a real h2 client as the hostile peer."""

from __future__ import annotations

import h2.config
import h2.connection
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from hyperpy import H2Settings, RemoteProtocolError
from hyperpy._core.budget import TokenBucket
from hyperpy._core.h2 import PREFACE, ErrorCodes, H2Protocol

REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"h"), (b":path", b"/")]


def _server(settings: H2Settings | None = None) -> H2Protocol:
    server = H2Protocol(client_side=False, settings=settings or H2Settings())
    server.start()
    server.data_to_send()
    return server


def _client() -> h2.connection.H2Connection:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    client.initiate_connection()
    return client


def _open(server: H2Protocol, client: h2.connection.H2Connection) -> None:
    """The client's preface and SETTINGS reach the server."""
    server.receive(client.data_to_send(), 0.0)
    server.data_to_send()


def _goaway(server: H2Protocol) -> GoAwayFrame:
    """The one frame the server says after a connection error: its GOAWAY."""
    data = server.data_to_send()
    frame, length = Frame.parse_frame_header(memoryview(data[:9]))
    frame.parse_body(memoryview(data[9 : 9 + length]))
    assert isinstance(frame, GoAwayFrame)
    assert len(data) == 9 + length  # nothing else goes out
    return frame


def _cut_off(server: H2Protocol, data: bytes, now: float = 0.0) -> GoAwayFrame:
    with pytest.raises(RemoteProtocolError):
        server.receive(data, now)
    return _goaway(server)


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(burst=3, rate=2.0)
    assert all(bucket.take(0.0) for _ in range(3))
    assert not bucket.take(0.0)
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)
    assert bucket.take(100.0) and bucket.tokens == 2  # never above the burst


def test_rapid_reset_is_cut_off_with_enhance_your_calm() -> None:
    """CVE-2023-44487: HEADERS then RST_STREAM, as fast as possible."""
    server, client = _server(H2Settings(remote_reset_burst=50, remote_reset_rate=1.0)), _client()
    _open(server, client)
    pairs = b""
    for sid in range(1, 2 * 60, 2):
        pairs += HeadersFrame(
            sid, client.encoder.encode(REQUEST), flags=["END_HEADERS"]
        ).serialize()
        pairs += RstStreamFrame(sid, error_code=ErrorCodes.CANCEL).serialize()
    goaway = _cut_off(server, pairs)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert "resets" in (server.failure_reason or "")


def test_a_stream_reset_as_it_opens_never_reaches_a_handler() -> None:
    server, client = _server(), _client()
    _open(server, client)
    client.send_headers(1, REQUEST, end_stream=True)
    client.reset_stream(1)
    client.send_headers(3, REQUEST, end_stream=True)
    changes = server.receive(client.data_to_send(), 0.0)
    assert changes.new_streams == [3]
    assert 1 not in server.streams


def test_resets_within_the_rate_are_fine() -> None:
    settings = H2Settings(remote_reset_burst=10, remote_reset_rate=10.0)
    server, client = _server(settings), _client()
    _open(server, client)
    for second in range(20):
        sid = 2 * second + 1
        client.send_headers(sid, REQUEST)
        client.reset_stream(sid)
        server.receive(client.data_to_send(), float(second))  # one a second: within
    assert server.failure_reason is None


def test_empty_data_frames_are_budgeted() -> None:
    server, client = _server(H2Settings(empty_data_burst=20, empty_data_rate=1.0)), _client()
    _open(server, client)
    client.send_headers(1, REQUEST)
    server.receive(client.data_to_send(), 0.0)
    goaway = _cut_off(server, DataFrame(1, b"").serialize() * 30)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


@pytest.mark.parametrize(
    "frame",
    [PingFrame(0, b"12345678"), SettingsFrame(0), PriorityFrame(1, depends_on=0, stream_weight=8)],
    ids=["ping", "settings", "priority"],
)
def test_control_frames_are_budgeted(frame: Frame) -> None:
    server, client = _server(H2Settings(control_frame_burst=40, control_frame_rate=1.0)), _client()
    _open(server, client)
    goaway = _cut_off(server, frame.serialize() * 60)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_continuation_flood_is_cut_off_at_four_times_the_header_list() -> None:
    settings = H2Settings(max_header_list_size=1024)
    server, client = _server(settings), _client()
    _open(server, client)
    block = HeadersFrame(1, client.encoder.encode(REQUEST)).serialize()  # no END_HEADERS
    server.receive(block, 0.0)
    filler = ContinuationFrame(1, b"\x00" * 1000).serialize()
    server.receive(filler * 3, 0.0)  # 3 KiB: within 4 KiB
    goaway = _cut_off(server, filler * 2)
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    assert "CONTINUATION" in (server.failure_reason or "")


def test_hpack_garbage_is_a_compression_error() -> None:
    server, client = _server(), _client()
    _open(server, client)
    garbage = HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff", flags=["END_HEADERS"]).serialize()
    assert _cut_off(server, garbage).error_code == ErrorCodes.COMPRESSION_ERROR


def test_settings_ack_with_a_payload_is_a_frame_size_error() -> None:
    server, client = _server(), _client()
    _open(server, client)
    ack = SettingsFrame(0, flags=["ACK"]).serialize()
    bad_ack = ack[:2] + b"\x06" + ack[3:] + b"\x00\x03\x00\x00\x00\x64"  # 6 bytes of payload
    assert _cut_off(server, bad_ack).error_code == ErrorCodes.FRAME_SIZE_ERROR


def test_a_first_frame_that_is_not_settings_is_a_protocol_error() -> None:
    server = _server()
    goaway = _cut_off(server, PREFACE + PingFrame(0, b"12345678").serialize())
    assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR
    assert "SETTINGS" in (server.failure_reason or "")


def test_resets_we_are_made_to_send_are_limited() -> None:
    """DATA on a stream the peer reset makes h2 answer RST_STREAM(STREAM_CLOSED) each
    time: an amplification the h2 crate caps at 1024 (``local_reset_limit``)."""
    server, client = _server(H2Settings(local_reset_limit=50)), _client()
    _open(server, client)
    client.send_headers(1, REQUEST)
    client.send_headers(3, REQUEST)  # keeps stream 1 below the highest, so it is known
    client.reset_stream(1)
    server.receive(client.data_to_send(), 0.0)
    server.data_to_send()
    sent = 0
    with pytest.raises(RemoteProtocolError):
        for _ in range(200):
            server.receive(DataFrame(1, b"x").serialize(), 0.0)
            sent += 1
            server.data_to_send()
    assert 40 <= sent <= 60
    assert _goaway(server).error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_after_the_final_goaway_the_peers_frames_are_ignored() -> None:
    """The client's last WINDOW_UPDATE for our last DATA must not abort the reader:
    closing with unread input would reset the connection and lose the response."""
    server, client = _server(), _client()
    _open(server, client)
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    server.send_headers(1, [(b":status", b"200")], end_stream=True)
    server.close()
    server.data_to_send()
    late = WindowUpdateFrame(0, window_increment=1000).serialize()
    late += PingFrame(0, b"12345678").serialize()
    changes = server.receive(late, 0.0)
    assert not changes.streams and not changes.new_streams
    assert server.data_to_send() == b""


def test_an_oversized_frame_is_refused_at_its_header() -> None:
    """A peer declaring a 16 MiB frame is cut off before it has sent it: the engine
    would buffer the whole frame before checking its length."""
    server, client = _server(), _client()
    _open(server, client)
    header = (16 * 1024 * 1024 - 1).to_bytes(3, "big") + bytes([0x0, 0]) + (1).to_bytes(4, "big")
    assert _cut_off(server, header + b"x" * 100).error_code == ErrorCodes.FRAME_SIZE_ERROR


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes.fromhex("000008070000000001") + bytes(8), ErrorCodes.PROTOCOL_ERROR),  # stream 1
        (bytes.fromhex("000004070000000000") + bytes(4), ErrorCodes.FRAME_SIZE_ERROR),  # short
    ],
    ids=["on-a-stream", "too-short"],
)
def test_a_malformed_goaway_gets_our_goaway(frame: bytes, code: int) -> None:
    server, client = _server(), _client()
    _open(server, client)
    assert _cut_off(server, frame).error_code == code


def test_tiny_data_frames_are_joined_in_the_buffer() -> None:
    server, client = _server(), _client()
    _open(server, client)
    client.send_headers(1, REQUEST)
    server.receive(client.data_to_send(), 0.0)
    frames = DataFrame(1, b"x").serialize() * 10_000
    server.receive(frames, 0.0)
    stream = server.streams[1]
    assert stream.buffered == 10_000
    assert len(stream.chunks) <= 3  # joined, not ten thousand tuples
    data = b""
    while (chunk := server.read(1)) is not None:
        assert isinstance(chunk, bytes)
        data += chunk
    assert data == b"x" * 10_000
