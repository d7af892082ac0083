# GENERATED from tests/_async/test_h2c_upgrade.py by scripts/unasync.py: do not edit.
"""``Upgrade: h2c``: the HTTP/1.1 connection hands itself to HTTP/2, and the request
that asked is answered as stream 1, even when a shutdown starts during the switch."""

from __future__ import annotations

import h2.config
import h2.connection

from hyperpy import Request, Response, Server, WriteError
from hyperpy._backends import SyncClock, SyncStream, SyncTaskGroup
from hyperpy.testing import MemoryNetwork

SETTINGS, HEADERS, DATA, GOAWAY = 0x4, 0x1, 0x0, 0x7
END_STREAM = 0x1


def app(request: Request) -> Response:
    return Response(200, text=f"{request.method} {request.path} over {request.http_version}")


def upgrade_request() -> tuple[bytes, bytes]:
    """An upgrading GET, and the preface and SETTINGS to send after the 101."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    head = (
        b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    return head, client.data_to_send()


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of each whole frame in ``data``."""
    out = []
    pos = 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        out.append((kind, flags, sid, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return out


def read_all(stream: SyncStream, into: bytearray) -> None:
    """Everything the server sends until it closes (bounded); then close as a client
    does once the server has said GOAWAY and gone."""
    deadline = SyncClock.now() + 5.0
    while SyncClock.now() < deadline:
        data = stream.receive(65536, 5.0)
        if not data:
            break
        into += data
    stream.close()


def check_stream_1_answered(received: bytes) -> list[tuple[int, int, int, bytes]]:
    head, _, rest = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    parsed = frames(rest)
    assert parsed[0][0] == SETTINGS  # the server's preface comes first (RFC 9113 §3.4)
    answer = [f for f in parsed if f[2] == 1]
    assert [kind for kind, *_ in answer] == [HEADERS, DATA]
    assert answer[-1][1] & END_STREAM
    assert answer[-1][3] == b"GET /up over 1.1"
    return parsed


def test_upgrade_answers_the_request_as_stream_1() -> None:
    net = MemoryNetwork()
    with Server(app, port=0, network=net) as server:
        assert server.address is not None
        stream = net.connect_tcp(*server.address, 5.0)
        head, preface = upgrade_request()
        stream.send_all(head + preface, 5.0)
        received = bytearray()
        with SyncTaskGroup() as tasks:
            tasks.start_soon(read_all, stream, received)
            SyncClock.sleep(0.3)
            start = SyncClock.now()
            server.shutdown(grace=3.0)
            assert SyncClock.now() - start < 2.0  # finished, not cut at the grace
    parsed = check_stream_1_answered(bytes(received))
    goaways = [payload for kind, _, _, payload in parsed if kind == GOAWAY]
    assert goaways and int.from_bytes(goaways[0][:4], "big") == 1  # stream 1 is kept


def test_shutdown_during_the_switch_still_answers_stream_1() -> None:
    # A tiny buffer holds the server in the middle of sending its 101 while the
    # shutdown begins: the HTTP/2 connection starts already draining.
    net = MemoryNetwork(buffer_size=32)
    with Server(app, port=0, network=net) as server:
        assert server.address is not None
        stream = net.connect_tcp(*server.address, 5.0)
        head, preface = upgrade_request()
        stream.send_all(head, 5.0)
        SyncClock.sleep(0.2)  # the server is blocked sending the 101
        received = bytearray()
        with SyncTaskGroup() as tasks:
            tasks.start_soon(server.shutdown, 3.0)
            SyncClock.sleep(0.2)  # the shutdown has begun
            tasks.start_soon(read_all, stream, received)
            try:
                stream.send_all(preface, 5.0)
            except WriteError:
                pass  # the server may answer, and close, before it reads our preface
    parsed = check_stream_1_answered(bytes(received))
    first_goaway = next(payload for kind, _, _, payload in parsed if kind == GOAWAY)
    assert int.from_bytes(first_goaway[:4], "big") == 1
