"""Cancellation in the trio world (not generated: it needs trio's cancel scopes).

A request cut short by a cancel scope must leave the client usable, and the
connection it was on must not be reused (it is mid-message).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from hyperpy import AsyncClient, AsyncServer, H2Settings, Request, Response
from hyperpy._async.http2_base import AsyncHTTP2Base
from hyperpy._core.h2 import H2Protocol
from hyperpy._exceptions import WriteError


async def app(request: Request) -> Response:
    if request.path == "/slow":
        await trio.sleep(1.0)
        return Response(200, text="slow")
    if request.path == "/drip":
        return Response(200, content=_drip())
    if request.client is None:  # pragma: no cover
        raise AssertionError("no peer address")
    return Response(200, json={"port": request.client[1]})


async def _drip() -> AsyncIterator[bytes]:
    yield b"first"
    await trio.sleep(1.0)
    yield b"second"


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(app, port=0) as server:
        yield server


async def test_cancel_waiting_for_response(server: AsyncServer) -> None:
    async with AsyncClient(timeout=5.0) as client:
        first = (await client.get(server.url + "/")).json()["port"]
        start = trio.current_time()
        with trio.move_on_after(0.2) as scope:
            await client.get(server.url + "/slow")
        assert scope.cancelled_caught
        assert trio.current_time() - start < 0.8
        response = await client.get(server.url + "/")
        assert response.status == 200
        assert response.json()["port"] != first  # not the cancelled connection
        assert client.connections_opened == 2


async def test_cancel_mid_body(server: AsyncServer) -> None:
    async with AsyncClient(timeout=5.0) as client:
        received = []
        with trio.move_on_after(0.3) as scope:
            async with client.stream("GET", server.url + "/drip") as response:
                async for chunk in response.aiter_bytes():
                    received.append(chunk)
        assert scope.cancelled_caught
        assert received == [b"first"]
        assert (await client.get(server.url + "/")).status == 200
        assert client.connections_opened == 2


async def test_cancel_while_connecting_is_clean(server: AsyncServer) -> None:
    async with AsyncClient(timeout=5.0) as client:
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.get(server.url + "/")
        assert scope.cancelled_caught
        # The cancelled attempt left no half-counted connection behind.
        assert (await client.get(server.url + "/")).status == 200
        assert client._pool._core.total == 1


async def test_cancelled_requests_do_not_leak_pool_slots(server: AsyncServer) -> None:
    async with AsyncClient(timeout=5.0, max_connections=1) as client:
        for _ in range(3):
            with trio.move_on_after(0.05):
                await client.get(server.url + "/slow")
        # With a leaked slot this would wait for the pool and fail.
        with trio.fail_after(3):
            assert (await client.get(server.url + "/")).status == 200


async def test_cancel_mid_upload(server: AsyncServer) -> None:
    sent = []

    async def body() -> AsyncIterator[bytes]:
        sent.append(1)
        yield b"part one"
        await trio.sleep(5)  # the upload stalls mid-body
        yield b"never sent"  # pragma: no cover

    async with AsyncClient(timeout=5.0) as client:
        with trio.move_on_after(0.2) as scope:
            await client.post(server.url + "/", content=body())
        assert scope.cancelled_caught
        assert sent == [1]
        # That connection is mid-request: a fresh one serves the next request.
        assert (await client.get(server.url + "/")).status == 200
        assert client.connections_opened == 2


class _StalledStream:
    """Takes the first bytes of a write, then blocks: a peer that stopped reading."""

    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        if self.closed:
            raise WriteError("closed")
        self.sent += bytes(data[:10])
        await trio.sleep_forever()

    async def aclose(self) -> None:
        self.closed = True


async def test_cancel_mid_h2_write_fails_the_connection() -> None:
    # A cancel inside send_all may leave half a frame on the wire: nothing may be
    # written after it, or the peer would read our next frame as part of that one.
    stream = _StalledStream()
    settings = H2Settings()
    conn = AsyncHTTP2Base(stream, H2Protocol(True, settings), settings)  # type: ignore[arg-type]
    conn._outbox.append(b"x" * 100)
    with trio.move_on_after(0.1) as scope:
        await conn._flush()
    assert scope.cancelled_caught
    assert stream.sent == b"x" * 10
    assert isinstance(conn._error, WriteError)
    assert stream.closed
    conn._outbox.append(b"y" * 100)
    with pytest.raises(WriteError):
        await conn._flush()
    assert stream.sent == b"x" * 10
