# GENERATED from tests/_async/test_streaming.py by scripts/unasync.py: do not edit.
"""Bodies that stream in both directions, without being held in memory at once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Client, Request, Response, Server
from hyperpy.testing import MemoryNetwork

from .helpers import byte_chunks, pattern

SIZE = 5_000_000


def test_stream_large_download(demo_server: Server, client: Client) -> None:
    total = 0
    chunks = 0
    with client.stream("GET", demo_server.url + f"/bytes/{SIZE}") as response:
        assert response.status == 200
        assert response.headers["content-length"] == str(SIZE)
        assert response.is_streaming
        with pytest.raises(hyperpy.ResponseNotRead):
            response.content  # noqa: B018 - the property raises
        for chunk in response.iter_bytes():
            assert chunk
            assert chunk.count(b"x") == len(chunk)
            total += len(chunk)
            chunks += 1
    assert total == SIZE
    assert chunks >= 20  # delivered piecewise, not as one buffer
    # Read to the end: the connection went back to the pool and is reused.
    assert (client.get(demo_server.url + "/")).status == 200
    assert client.connections_opened == 1


def test_stream_read_then_content(demo_server: Server, client: Client) -> None:
    with client.stream("GET", demo_server.url + "/bytes/100000") as response:
        body = response.read()
        assert len(body) == 100000
        assert response.content is body
        # Once read, iterating replays the body from memory.
        assert b"".join([chunk for chunk in response.iter_bytes()]) == body


def test_stream_consumed_twice(demo_server: Server, client: Client) -> None:
    with client.stream("GET", demo_server.url + "/bytes/1000") as response:
        assert sum([len(c) for c in response.iter_bytes()]) == 1000
        with pytest.raises(hyperpy.StreamConsumed):
            for _ in response.iter_bytes():
                pass  # pragma: no cover


def test_stream_abandoned_midway(demo_server: Server, client: Client) -> None:
    with client.stream("GET", demo_server.url + f"/bytes/{SIZE}") as response:
        for chunk in response.iter_bytes():
            assert chunk
            break
    # The rest of the body was never read: that connection cannot carry another request.
    response = client.get(demo_server.url + "/")
    assert response.status == 200
    assert client.connections_opened == 2


def test_streaming_server_response_is_chunked(server: Server, client: Client) -> None:
    with client.stream("GET", server.url + "/stream?n=40&size=3000") as response:
        assert response.status == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        body = b"".join([chunk for chunk in response.iter_bytes()])
    assert body == b"".join(pattern(i, 3000) for i in range(40))
    assert response.trailers["x-chunks"] == "40"


def test_streaming_server_response_read_fully(server: Server, client: Client) -> None:
    response = client.get(server.url + "/stream?n=5&size=10")
    assert response.content == b"".join(pattern(i, 10) for i in range(5))
    assert response.trailers["x-chunks"] == "5"
    # Chunked response fully read: the connection is reused.
    assert (client.get(server.url + "/stream?n=1&size=1")).content == b"A"
    assert client.connections_opened == 1


def test_async_generator_handler_response(net: MemoryNetwork) -> None:
    def numbers() -> Iterator[bytes]:
        for n in range(300):
            yield f"{n}\n".encode()

    def handler(request: Request) -> Response:
        return Response(200, content=numbers(), headers={"content-type": "text/plain"})

    with Server(handler, port=0, network=net) as server:
        with Client(network=net) as client:
            response = client.get(server.url + "/")
    assert response.text.splitlines() == [str(n) for n in range(300)]
    assert response.headers["transfer-encoding"] == "chunked"


def test_request_body_streamed_to_handler(server: Server, client: Client) -> None:
    count, size = 80, 64 * 1024
    response = client.post(server.url + "/upload", content=byte_chunks(count, size))
    seen = response.json()
    assert seen["total"] == count * size
    assert seen["chunks"] > 1  # the handler saw it piecewise, not as one buffer
    expected = hashlib.sha256(b"".join(pattern(i, size) for i in range(count))).hexdigest()
    assert seen["sha256"] == expected
    assert seen["transfer-encoding"] == "chunked"


def test_large_bytes_body_streamed_to_handler(server: Server, client: Client) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, sent with Content-Length
    seen = (client.put(server.url + "/upload", content=payload)).json()
    assert seen["total"] == len(payload)
    assert seen["transfer-encoding"] is None
    assert seen["sha256"] == hashlib.sha256(payload).hexdigest()


def test_unread_request_body_does_not_break_keepalive(server: Server, client: Client) -> None:
    # "/" never reads the body: the server discards it and keeps the connection.
    response = client.post(server.url + "/", content=b"z" * 200_000)
    assert response.text == "ok"
    response = client.post(server.url + "/", content=byte_chunks(10, 1000))
    assert response.text == "ok"
    assert (client.get(server.url + "/")).status == 200
    assert client.connections_opened == 1


def test_request_trailers_reach_the_handler_over_http11(
    demo_server: Server, client: Client
) -> None:
    def body() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    request = client.build_request("POST", demo_server.url + "/echo", content=body())
    request.trailers = hyperpy.Headers({"x-checksum": "123"})
    response = client.send(request)
    assert response.content == b"abcdef"
    # The demo's /echo sends the request's trailers back as response trailers.
    assert response.trailers["x-checksum"] == "123"


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "streamed"])
def test_head_to_a_handler_with_trailers(net: MemoryNetwork, streamed: bool) -> None:
    """The answer to HEAD carries no body and so no trailers; it is still answered
    (once: a lost answer would make the client retry the idempotent HEAD)."""
    calls: list[str] = []

    def handler(request: Request) -> Response:
        calls.append(request.method)
        content = byte_chunks(2, 10) if streamed else b"0123456789" * 2
        return Response(200, content=content, trailers={"x-sum": "20"})

    with Server(handler, port=0, network=net) as server:
        with Client(network=net) as client:
            response = client.head(server.url + "/")
            assert response.status == 200
            assert response.content == b""
            assert "x-sum" not in response.trailers
            get = client.get(server.url + "/")
            expected = pattern(0, 10) + pattern(1, 10) if streamed else b"0123456789" * 2
            assert get.content == expected
            assert get.trailers["x-sum"] == "20"
    assert calls == ["HEAD", "GET"]
