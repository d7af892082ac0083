# GENERATED from tests/_async/test_server_errors.py by scripts/unasync.py: do not edit.
"""The server under bad input and failing handlers: clean errors, and it keeps serving."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Client, Request, Response, Server, ServerLimits
from hyperpy._backends import SyncClock
from hyperpy.testing import MemoryNetwork

from .helpers import app, raw_connection, read_until_eof

MALFORMED = [
    pytest.param(b"GARBAGE\r\n\r\n", 400, id="bad-request-line"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n", 400, id="bad-header"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="missing-host"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ten\r\n\r\n", 400, id="bad-length"
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
        id="conflicting-lengths",
    ),
    pytest.param(b"GET / HTTP/9.9\r\nHost: h\r\n\r\n", 505, id="bad-version"),
    pytest.param(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, id="http2-request-line"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400, id="unknown-te"
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost: h:99999\r\n\r\n", 400, id="bad-host-port"),
]


def _port(server: Server) -> int:
    assert server.address is not None
    return server.address[1]


def _status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data
    return int(data[9:12])


def _raw_exchange(server: Server, data: bytes) -> bytes:
    """Send ``data``; return everything the server answers until it closes."""
    with raw_connection(server) as stream:
        stream.send_all(data, 5.0)
        return read_until_eof(stream)


@pytest.mark.parametrize(("request_bytes", "status"), MALFORMED)
def test_malformed_request_rejected(
    server: Server, client: Client, request_bytes: bytes, status: int
) -> None:
    data = _raw_exchange(server, request_bytes)
    assert _status(data) == status
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"\r\nconnection: close" in head.lower()
    assert int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) == len(body)
    assert body.startswith(str(status).encode())
    # The server is unharmed: a normal request on a new connection works.
    assert (client.get(server.url + "/")).text == "ok"


def test_invalid_chunked_body_read_by_handler(demo_server: Server, client: Client) -> None:
    bad = b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n"
    data = _raw_exchange(demo_server, bad)
    assert _status(data) == 400
    assert (client.post(demo_server.url + "/echo", content=b"fine")).content == b"fine"


def test_truncated_body_then_close(server: Server, client: Client) -> None:
    with raw_connection(server) as stream:
        stream.send_all(
            b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly-some", 5.0
        )
    # The handler's read fails, nothing crashes, and the server carries on.
    assert (client.get(server.url + "/")).status == 200


def test_garbage_after_valid_request(server: Server) -> None:
    data = _raw_exchange(server, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n\x00\x01\x02 junk\r\n\r\n")
    first, _, rest = data.partition(b"\r\n\r\nok")
    assert _status(first) == 200
    assert _status(rest) == 400


def test_target_too_long_414(server: Server, client: Client) -> None:
    response = client.get(server.url + "/" + "a" * 9000)  # default limit: 8 KiB
    assert response.status == 414
    assert response.headers["connection"] == "close"
    assert (client.get(server.url + "/")).status == 200
    assert client.connections_opened == 2


def test_target_limit_is_configurable(net: MemoryNetwork) -> None:
    with Server(app, port=0, limits=ServerLimits(max_target_bytes=100), network=net) as server:
        with Client(network=net) as client:
            ok = client.get(server.url + "/inspect?" + "q" * 80)
            too_long = client.get(server.url + "/inspect?" + "q" * 120)
    assert ok.status == 200
    assert too_long.status == 414


def test_too_many_headers_431(net: MemoryNetwork) -> None:
    with Server(app, port=0, limits=ServerLimits(max_header_count=10), network=net) as server:
        with Client(network=net) as client:
            few = client.get(server.url + "/", headers={f"x-h{i}": "v" for i in range(3)})
            many = client.get(server.url + "/", headers={f"x-h{i}": "v" for i in range(20)})
            after = client.get(server.url + "/")
    assert few.status == 200
    assert many.status == 431
    assert many.headers["connection"] == "close"
    assert after.status == 200


@pytest.mark.parametrize("pieces", [1, 40], ids=["whole", "trickled"])
def test_head_too_large_431(net: MemoryNetwork, pieces: int) -> None:
    limits = ServerLimits(max_head_bytes=2048)
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 4096 + b"\r\n\r\n"
    with Server(app, port=0, limits=limits, network=net) as server:
        with raw_connection(server) as stream:
            step = -(-len(head) // pieces)
            try:
                for start in range(0, len(head), step):
                    stream.send_all(head[start : start + step], 5.0)
                    SyncClock.checkpoint()
            except hyperpy.WriteError:
                pass  # the server may answer and close before the whole head is sent
            data = read_until_eof(stream)
        assert _status(data) == 431
        with Client(network=net) as client:
            assert (client.get(server.url + "/")).status == 200


def test_handler_exception_is_500_and_server_keeps_serving(
    server: Server, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(server.url + "/error")
    assert response.status == 500
    assert response.text == "Internal Server Error\n"
    assert "boom" not in response.text  # no internals leak to the client
    assert any("handler error" in record.message for record in caplog.records)
    assert (client.get(server.url + "/")).status == 200
    # The 500 was a well-formed response: the connection stayed usable.
    assert client.connections_opened == 1


def test_handler_returning_non_response_is_500(net: MemoryNetwork) -> None:
    def bad(request: Request) -> Response:
        return "not a response"  # type: ignore[return-value]

    with Server(bad, port=0, network=net) as server:
        with Client(network=net) as client:
            response = client.get(server.url + "/")
    assert response.status == 500


def test_response_stream_failing_midway_cuts_connection(net: MemoryNetwork) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("generator failed")

    def handler(request: Request) -> Response:
        if request.path == "/broken":
            return Response(200, content=broken())
        return Response(200, text="fine")

    with Server(handler, port=0, network=net) as server:
        with Client(network=net) as client:
            with pytest.raises(hyperpy.RemoteProtocolError):
                client.get(server.url + "/broken")
            assert (client.get(server.url + "/")).text == "fine"
            assert client.connections_opened == 2


@pytest.mark.parametrize("http2", [False, True], ids=["h1-only", "h1-and-h2c"])
def test_connections_reset_right_after_connect(
    http2: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with Server(app, port=0, http2=http2) as server:
        assert server.address is not None
        for _ in range(20):
            sock = socket.create_connection(server.address, timeout=5)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # SO_LINGER 0: a reset, before the server even looked at it
        SyncClock.sleep(0.3)
        with Client() as client:
            assert (client.get(server.url + "/")).text == "ok"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
