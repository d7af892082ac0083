"""Bodies that stream in both directions, without being held in memory at once."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Request, Response
from hyperpy.testing import AsyncMemoryNetwork

from .helpers import byte_chunks, pattern

SIZE = 5_000_000


async def test_stream_large_download(demo_server: AsyncServer, client: AsyncClient) -> None:
    total = 0
    chunks = 0
    async with client.stream("GET", demo_server.url + f"/bytes/{SIZE}") as response:
        assert response.status == 200
        assert response.headers["content-length"] == str(SIZE)
        assert response.is_streaming
        with pytest.raises(hyperpy.ResponseNotRead):
            response.content  # noqa: B018 - the property raises
        async for chunk in response.aiter_bytes():
            assert chunk
            assert chunk.count(b"x") == len(chunk)
            total += len(chunk)
            chunks += 1
    assert total == SIZE
    assert chunks >= 20  # delivered piecewise, not as one buffer
    # Read to the end: the connection went back to the pool and is reused.
    assert (await client.get(demo_server.url + "/")).status == 200
    assert client.connections_opened == 1


async def test_stream_read_then_content(demo_server: AsyncServer, client: AsyncClient) -> None:
    async with client.stream("GET", demo_server.url + "/bytes/100000") as response:
        body = await response.aread()
        assert len(body) == 100000
        assert response.content is body
        # Once read, iterating replays the body from memory.
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == body


async def test_stream_consumed_twice(demo_server: AsyncServer, client: AsyncClient) -> None:
    async with client.stream("GET", demo_server.url + "/bytes/1000") as response:
        assert sum([len(c) async for c in response.aiter_bytes()]) == 1000
        with pytest.raises(hyperpy.StreamConsumed):
            async for _ in response.aiter_bytes():
                pass  # pragma: no cover


async def test_stream_abandoned_midway(demo_server: AsyncServer, client: AsyncClient) -> None:
    async with client.stream("GET", demo_server.url + f"/bytes/{SIZE}") as response:
        async for chunk in response.aiter_bytes():
            assert chunk
            break
    # The rest of the body was never read: that connection cannot carry another request.
    response = await client.get(demo_server.url + "/")
    assert response.status == 200
    assert client.connections_opened == 2


async def test_streaming_server_response_is_chunked(
    server: AsyncServer, client: AsyncClient
) -> None:
    async with client.stream("GET", server.url + "/stream?n=40&size=3000") as response:
        assert response.status == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == b"".join(pattern(i, 3000) for i in range(40))
    assert response.trailers["x-chunks"] == "40"


async def test_streaming_server_response_read_fully(
    server: AsyncServer, client: AsyncClient
) -> None:
    response = await client.get(server.url + "/stream?n=5&size=10")
    assert response.content == b"".join(pattern(i, 10) for i in range(5))
    assert response.trailers["x-chunks"] == "5"
    # Chunked response fully read: the connection is reused.
    assert (await client.get(server.url + "/stream?n=1&size=1")).content == b"A"
    assert client.connections_opened == 1


async def test_async_generator_handler_response(net: AsyncMemoryNetwork) -> None:
    async def numbers() -> AsyncIterator[bytes]:
        for n in range(300):
            yield f"{n}\n".encode()

    async def handler(request: Request) -> Response:
        return Response(200, content=numbers(), headers={"content-type": "text/plain"})

    async with AsyncServer(handler, port=0, network=net) as server:
        async with AsyncClient(network=net) as client:
            response = await client.get(server.url + "/")
    assert response.text.splitlines() == [str(n) for n in range(300)]
    assert response.headers["transfer-encoding"] == "chunked"


async def test_request_body_streamed_to_handler(server: AsyncServer, client: AsyncClient) -> None:
    count, size = 80, 64 * 1024
    response = await client.post(server.url + "/upload", content=byte_chunks(count, size))
    seen = response.json()
    assert seen["total"] == count * size
    assert seen["chunks"] > 1  # the handler saw it piecewise, not as one buffer
    expected = hashlib.sha256(b"".join(pattern(i, size) for i in range(count))).hexdigest()
    assert seen["sha256"] == expected
    assert seen["transfer-encoding"] == "chunked"


async def test_large_bytes_body_streamed_to_handler(
    server: AsyncServer, client: AsyncClient
) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, sent with Content-Length
    seen = (await client.put(server.url + "/upload", content=payload)).json()
    assert seen["total"] == len(payload)
    assert seen["transfer-encoding"] is None
    assert seen["sha256"] == hashlib.sha256(payload).hexdigest()


async def test_unread_request_body_does_not_break_keepalive(
    server: AsyncServer, client: AsyncClient
) -> None:
    # "/" never reads the body: the server discards it and keeps the connection.
    response = await client.post(server.url + "/", content=b"z" * 200_000)
    assert response.text == "ok"
    response = await client.post(server.url + "/", content=byte_chunks(10, 1000))
    assert response.text == "ok"
    assert (await client.get(server.url + "/")).status == 200
    assert client.connections_opened == 1


async def test_request_trailers_reach_the_handler_over_http11(
    demo_server: AsyncServer, client: AsyncClient
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    request = client.build_request("POST", demo_server.url + "/echo", content=body())
    request.trailers = hyperpy.Headers({"x-checksum": "123"})
    response = await client.send(request)
    assert response.content == b"abcdef"
    # The demo's /echo sends the request's trailers back as response trailers.
    assert response.trailers["x-checksum"] == "123"


@pytest.mark.parametrize("streamed", [False, True], ids=["bytes", "streamed"])
async def test_head_to_a_handler_with_trailers(net: AsyncMemoryNetwork, streamed: bool) -> None:
    """The answer to HEAD carries no body and so no trailers; it is still answered
    (once: a lost answer would make the client retry the idempotent HEAD)."""
    calls: list[str] = []

    async def handler(request: Request) -> Response:
        calls.append(request.method)
        content = byte_chunks(2, 10) if streamed else b"0123456789" * 2
        return Response(200, content=content, trailers={"x-sum": "20"})

    async with AsyncServer(handler, port=0, network=net) as server:
        async with AsyncClient(network=net) as client:
            response = await client.head(server.url + "/")
            assert response.status == 200
            assert response.content == b""
            assert "x-sum" not in response.trailers
            get = await client.get(server.url + "/")
            expected = pattern(0, 10) + pattern(1, 10) if streamed else b"0123456789" * 2
            assert get.content == expected
            assert get.trailers["x-sum"] == "20"
    assert calls == ["HEAD", "GET"]
