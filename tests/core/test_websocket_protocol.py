"""Unit tests of the sans-IO WebSocket frame layer (``hyperpy._core.websocket``): no
sockets. The peer's frames are built by hand, and what hyperpy wants to send is
parsed back, in both roles (a client masks its frames, a server must not).
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass

import pytest

from hyperpy import WebSocketClosed
from hyperpy._core.websocket import (
    ABNORMAL_CLOSURE,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    PROTOCOL_ERROR,
    Closed,
    WebSocketProtocol,
)

INVALID_PAYLOAD = 1007  # RFC 6455 §7.4.1: data inconsistent with the type (bad UTF-8)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1

ROLES = ["server", "client"]


# -- helpers ----------------------------------------------------------------------


def _frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, masked: bool
) -> bytes:
    """One raw frame (RFC 6455 §5.2), masked with a random key if ``masked``."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def peer(role: str, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A frame from hyperpy's peer: masked when the peer is a client (hyperpy serves)."""
    return _frame(opcode, payload, fin=fin, rsv=rsv, masked=role == "server")


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


@dataclass
class Sent:
    """One frame hyperpy sent, unmasked."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


def parse(data: bytes) -> list[Sent]:
    """Split bytes hyperpy wants to send into frames; every byte must belong to one."""
    frames: list[Sent] = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        i += 2
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        masked = bool(b1 & 0x80)
        key = b"\0\0\0\0"
        if masked:
            key, i = data[i : i + 4], i + 4
        body = data[i : i + n]
        assert len(body) == n, "a truncated frame"
        i += n
        payload = bytes(b ^ key[j % 4] for j, b in enumerate(body))
        frames.append(Sent(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0x0F, masked, payload))
    return frames


def sent(proto: WebSocketProtocol, role: str) -> list[Sent]:
    """Take what ``proto`` wants to send; check the masking its role requires."""
    frames = parse(proto.data_to_send())
    for frame in frames:
        # RFC 6455 §5.1: a client masks every frame, a server none.
        assert frame.masked is (role == "client"), frame
        assert frame.fin and frame.rsv == 0, frame
    return frames


def assert_close_frame(frames: list[Sent], code: int) -> None:
    """Exactly one frame, a close carrying ``code`` and a UTF-8 reason that fits."""
    assert [f.opcode for f in frames] == [CLOSE], frames
    payload = frames[0].payload
    assert len(payload) <= 125  # a control frame's limit
    assert struct.unpack("!H", payload[:2])[0] == code
    payload[2:].decode("utf-8")


def new(role: str, **kwargs: object) -> WebSocketProtocol:
    return WebSocketProtocol(client_side=role == "client", **kwargs)  # type: ignore[arg-type]


# -- broken frames are answered with a close frame (RFC 6455 §7.1.7) ----------------

# (name, frames the peer sends, the close code hyperpy must answer with)
BROKEN: list[tuple[str, list[tuple[int, bytes, bool, int]], int]] = [
    ("rsv1 without an extension", [(TEXT, b"hi", True, RSV1)], PROTOCOL_ERROR),
    ("rsv2", [(BINARY, b"hi", True, RSV2)], PROTOCOL_ERROR),
    ("rsv3 on a ping", [(PING, b"", True, RSV3)], PROTOCOL_ERROR),
    ("fragmented ping", [(PING, b"p", False, 0)], PROTOCOL_ERROR),
    ("fragmented close", [(CLOSE, close_payload(1000), False, 0)], PROTOCOL_ERROR),
    ("ping over 125 bytes", [(PING, b"x" * 126, True, 0)], PROTOCOL_ERROR),
    ("reserved opcode 0x3", [(0x3, b"", True, 0)], PROTOCOL_ERROR),
    ("reserved control opcode 0xB", [(0xB, b"", True, 0)], PROTOCOL_ERROR),
    ("continuation with nothing to continue", [(CONT, b"x", True, 0)], PROTOCOL_ERROR),
    (
        "a new text inside a fragmented one",
        [(TEXT, b"a", False, 0), (TEXT, b"b", True, 0)],
        PROTOCOL_ERROR,
    ),
    ("close code 999", [(CLOSE, close_payload(999), True, 0)], PROTOCOL_ERROR),
    ("close code 1005 (never sent)", [(CLOSE, close_payload(1005), True, 0)], PROTOCOL_ERROR),
    ("close code 1006 (never sent)", [(CLOSE, close_payload(1006), True, 0)], PROTOCOL_ERROR),
    ("close code 1100 (reserved)", [(CLOSE, close_payload(1100), True, 0)], PROTOCOL_ERROR),
    ("close code 5000", [(CLOSE, close_payload(5000), True, 0)], PROTOCOL_ERROR),
    ("close with a 1-byte payload", [(CLOSE, b"\x03", True, 0)], PROTOCOL_ERROR),
    (
        "close reason not UTF-8",
        [(CLOSE, close_payload(1000, b"\xff\xfe"), True, 0)],
        INVALID_PAYLOAD,
    ),
    ("text not UTF-8", [(TEXT, b"ok \xff\xfe", True, 0)], INVALID_PAYLOAD),
    (
        "fragmented text not UTF-8",
        [(TEXT, b"caf\xc3", False, 0), (CONT, b"\xa9 \xed\xa0\x80", True, 0)],
        INVALID_PAYLOAD,
    ),
    ("text ending inside a code point", [(TEXT, b"caf\xc3", True, 0)], INVALID_PAYLOAD),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("frames", "code"), [pytest.param(f, c, id=name) for name, f, c in BROKEN])
def test_broken_frame_is_answered_with_a_close(
    role: str, frames: list[tuple[int, bytes, bool, int]], code: int
) -> None:
    proto = new(role)
    data = b"".join(peer(role, op, payload, fin=fin, rsv=rsv) for op, payload, fin, rsv in frames)
    events = proto.receive(data)
    assert len(events) == 1 and isinstance(events[0], Closed)
    assert events[0].code == code
    assert type(events[0].code) is int  # never wsproto's own enum
    assert proto.closed == events[0]
    assert proto.close_sent and not proto.open
    assert_close_frame(sent(proto, role), code)
    # Failed: nothing more to send, nothing more delivered, no more sending.
    assert not proto.data_to_send_pending()
    assert proto.receive_buffered() == []
    with pytest.raises(WebSocketClosed):
        proto.send_message("too late")


@pytest.mark.parametrize("role", ROLES)
def test_broken_frame_fed_byte_by_byte(role: str) -> None:
    """Invalid UTF-8 is caught as it arrives, with the close sent once."""
    proto = new(role)
    data = peer(role, TEXT, "é".encode() + b"\xff" + b"x" * 50)
    events: list[str | bytes | Closed] = []
    for i in range(len(data)):
        events += proto.receive(data[i : i + 1])
        if proto.closed is not None:
            break
    assert events == [proto.closed]
    assert proto.closed is not None and proto.closed.code == INVALID_PAYLOAD
    assert_close_frame(sent(proto, role), INVALID_PAYLOAD)


@pytest.mark.parametrize("role", ROLES)
def test_wrong_masking_is_a_protocol_error(role: str) -> None:
    """A server must get masked frames and a client unmasked ones (RFC 6455 §5.1)."""
    proto = new(role)
    wrong = _frame(TEXT, b"hello", masked=role == "client")
    [closed] = proto.receive(wrong)
    assert closed == proto.closed and closed.code == PROTOCOL_ERROR
    assert_close_frame(sent(proto, role), PROTOCOL_ERROR)


@pytest.mark.parametrize("role", ROLES)
def test_broken_frame_after_our_close_sends_no_second_close(role: str) -> None:
    """Once our close is out, a broken frame ends the connection without another."""
    proto = new(role)
    proto.close(NORMAL_CLOSURE, "done")
    assert_close_frame(sent(proto, role), NORMAL_CLOSURE)
    [closed] = proto.receive(peer(role, TEXT, b"x", rsv=RSV1))
    assert closed == proto.closed and closed.code == PROTOCOL_ERROR
    assert not proto.data_to_send_pending()


@pytest.mark.parametrize("role", ROLES)
def test_message_too_big_is_answered_with_1009(role: str) -> None:
    proto = new(role, max_message_size=10)
    events = proto.receive(peer(role, TEXT, b"12345", fin=False))
    assert events == [] and proto.closed is None
    [closed] = proto.receive(peer(role, CONT, b"678901"))
    assert closed == proto.closed and closed.code == MESSAGE_TOO_BIG
    assert_close_frame(sent(proto, role), MESSAGE_TOO_BIG)


# -- a whole message before a broken frame is still delivered ----------------------


@pytest.mark.parametrize("role", ROLES)
def test_message_before_broken_frame_comes_first(role: str) -> None:
    """Frames are handled in order: the message is delivered and may be answered
    before the broken frame behind it (in the same read) fails the connection."""
    proto = new(role)
    data = peer(role, TEXT, b"hello") + peer(role, TEXT, b"bad", rsv=RSV1)
    assert proto.receive(data) == ["hello"]
    assert proto.closed is None and proto.open
    assert not proto.data_to_send_pending()  # no close yet: the app may still answer
    proto.send_message("echo: hello")
    [reply] = sent(proto, role)
    assert (reply.opcode, reply.payload) == (TEXT, b"echo: hello")
    [closed] = proto.receive_buffered()
    assert closed == proto.closed and closed.code == PROTOCOL_ERROR
    assert_close_frame(sent(proto, role), PROTOCOL_ERROR)
    assert proto.receive_buffered() == []


@pytest.mark.parametrize("role", ROLES)
def test_fragmented_message_before_bad_utf8_comes_first(role: str) -> None:
    proto = new(role)
    data = (
        peer(role, BINARY, b"\x00\x01", fin=False)
        + peer(role, PING, b"mid")  # control frames may sit between fragments
        + peer(role, CONT, b"\x02")
        + peer(role, TEXT, b"\xc0\xaf")  # an overlong encoding: not UTF-8
    )
    assert proto.receive(data) == [b"\x00\x01\x02"]
    [pong] = sent(proto, role)  # the ping came before the message's end
    assert (pong.opcode, pong.payload) == (PONG, b"mid")
    [closed] = proto.receive_buffered()
    assert closed.code == INVALID_PAYLOAD
    assert_close_frame(sent(proto, role), INVALID_PAYLOAD)


@pytest.mark.parametrize("role", ROLES)
def test_bytes_after_handshake_are_buffered_in_order(role: str) -> None:
    """Bytes read with the handshake (``initial``) wait for ``receive_buffered``."""
    data = (
        peer(role, TEXT, b"one")
        + peer(role, BINARY, b"two")
        + peer(role, PING, b"", fin=False)  # broken
    )
    proto = new(role, initial=data)
    assert not proto.data_to_send_pending()
    assert proto.receive_buffered() == ["one"]
    assert proto.receive_buffered() == [b"two"]
    [closed] = proto.receive_buffered()
    assert closed.code == PROTOCOL_ERROR
    assert_close_frame(sent(proto, role), PROTOCOL_ERROR)


@pytest.mark.parametrize("role", ROLES)
def test_messages_in_one_read_are_delivered_one_at_a_time(role: str) -> None:
    proto = new(role)
    data = b"".join(peer(role, TEXT, f"m{i}".encode()) for i in range(5))
    got = proto.receive(data)
    while True:
        more = proto.receive_buffered()
        if not more:
            break
        assert len(more) == 1  # one message per call
        got += more
    assert got == [f"m{i}" for i in range(5)]
    assert proto.closed is None and not proto.data_to_send_pending()


@pytest.mark.parametrize("role", ROLES)
def test_message_before_close_frame_comes_first(role: str) -> None:
    """A message and the peer's close in one read: the message, then the close."""
    proto = new(role)
    data = peer(role, TEXT, b"last") + peer(role, CLOSE, close_payload(1000, b"bye"))
    assert proto.receive(data) == ["last"]
    assert proto.closed is None
    assert proto.receive_buffered() == [Closed(NORMAL_CLOSURE, "bye")]
    assert_close_frame(sent(proto, role), NORMAL_CLOSURE)  # the echo


# -- normal traffic ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_fragmented_text_across_reads_with_ping(role: str) -> None:
    """A text split in fragments, with a code point split across them, fed in
    small reads that cut frame headers; the ping in between is answered at once."""
    text = "héllo wörld ✓ " * 20
    raw = text.encode()
    cuts = [0, 3, 100, 101, 200, len(raw)]  # 3 and 101 fall inside code points
    chunks = [raw[a:b] for a, b in itertools.pairwise(cuts)]
    frames = [
        peer(role, TEXT if i == 0 else CONT, chunk, fin=i == len(chunks) - 1)
        for i, chunk in enumerate(chunks)
    ]
    frames.insert(2, peer(role, PING, b"are you there"))
    stream = b"".join(frames)
    proto = new(role)
    got: list[str | bytes | Closed] = []
    pongs: list[bytes] = []
    for i in range(0, len(stream), 7):
        got += proto.receive(stream[i : i + 7])
        pongs += [f.payload for f in sent(proto, role) if f.opcode == PONG]
        if not got:
            assert proto.receive_buffered() == []
    assert got == [text]
    assert pongs == [b"are you there"]
    assert proto.closed is None and proto.open


@pytest.mark.parametrize("role", ROLES)
def test_ping_answered_pong_dropped(role: str) -> None:
    proto = new(role)
    assert proto.receive(peer(role, PING, b"\x00abc")) == []
    [pong] = sent(proto, role)
    assert (pong.opcode, pong.payload) == (PONG, b"\x00abc")
    assert proto.receive(peer(role, PONG, b"unsolicited")) == []  # RFC 6455 §5.5.3
    assert not proto.data_to_send_pending()


@pytest.mark.parametrize("role", ROLES)
def test_large_binary_message(role: str) -> None:
    """Payload lengths in the 16-bit and 64-bit forms, both directions."""
    proto = new(role)
    for size in (200, 70_000):
        payload = bytes(range(256)) * (size // 256) + b"!" * (size % 256)
        assert proto.receive(peer(role, BINARY, payload)) == [payload]
        proto.send_message(payload)
        [frame] = sent(proto, role)
        assert (frame.opcode, frame.payload) == (BINARY, payload)


@pytest.mark.parametrize("role", ROLES)
def test_peer_close_is_echoed(role: str) -> None:
    proto = new(role)
    assert proto.receive(peer(role, CLOSE, close_payload(1001, b"going"))) == [
        Closed(1001, "going")
    ]
    assert_close_frame(sent(proto, role), 1001)
    with pytest.raises(WebSocketClosed):
        proto.send_message("after close")


@pytest.mark.parametrize("role", ROLES)
def test_our_close_then_peer_echo(role: str) -> None:
    proto = new(role)
    proto.close(NORMAL_CLOSURE, "bye")
    assert_close_frame(sent(proto, role), NORMAL_CLOSURE)
    proto.close()  # once only
    assert not proto.data_to_send_pending()
    assert proto.receive(peer(role, CLOSE, close_payload(1000))) == [Closed(1000, "")]
    assert not proto.data_to_send_pending()  # no echo of an echo


@pytest.mark.parametrize("role", ROLES)
def test_end_without_close_frame_is_1006(role: str) -> None:
    proto = new(role)
    assert proto.receive(b"") == [Closed(ABNORMAL_CLOSURE, proto.closed.reason)]  # type: ignore[union-attr]
    assert not proto.data_to_send_pending()  # 1006 is never sent (RFC 6455 §7.4.1)
    assert proto.receive(b"") == []
