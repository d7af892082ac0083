"""Cancellation in the trio world (not generated: it needs trio's cancel scopes).

A request cut short by a cancel scope must leave the client usable, and the
connection it was on must not be reused (it is mid-message).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import AsyncIterator

import pytest
import trio

from hyperpy import AsyncClient, AsyncServer, H2Settings, Request, Response
from hyperpy._async.http2_base import AsyncHTTP2Base
from hyperpy._core.h2 import H2Protocol
from hyperpy._exceptions import WriteError, WriteTimeout


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


class _SlowStream:
    """Takes a write in two halves, ``delay`` apart; with ``stall`` the second never comes
    (a peer that stopped reading)."""

    def __init__(self, delay: float, *, stall: bool = False) -> None:
        self.sent = b""
        self.closed = False
        self.delay = delay
        self.stall = stall

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        if self.closed:
            raise WriteError("closed")
        self.sent += bytes(data[:10])
        await trio.sleep(self.delay if not self.stall else math.inf)
        self.sent += bytes(data[10:])

    async def aclose(self) -> None:
        self.closed = True


async def test_cancelled_caller_never_cuts_a_frame_write_short() -> None:
    # The task that holds the write lock also sends other streams' frames: its
    # cancellation waits for the write in progress, and the connection lives on.
    stream = _SlowStream(0.3)
    settings = H2Settings()
    conn = AsyncHTTP2Base(stream, H2Protocol(True, settings), settings)  # type: ignore[arg-type]
    conn._write_timeout = 5.0
    conn._outbox.append(b"x" * 100)
    with trio.move_on_after(0.1) as scope:
        await conn._flush()
        await trio.sleep(1)  # the cancellation lands here, after the write
    assert scope.cancelled_caught
    assert stream.sent == b"x" * 100
    assert conn._error is None and not stream.closed


async def test_a_frame_write_past_its_deadline_fails_the_connection() -> None:
    # Half a frame on the wire: nothing may be written after it, or the peer would
    # read our next frame as part of that one.
    stream = _SlowStream(0, stall=True)
    settings = H2Settings()
    conn = AsyncHTTP2Base(stream, H2Protocol(True, settings), settings)  # type: ignore[arg-type]
    conn._write_timeout = 0.1
    conn._outbox.append(b"x" * 100)
    with trio.fail_after(3), pytest.raises(WriteTimeout):
        await conn._flush()
    assert stream.sent == b"x" * 10
    assert isinstance(conn._error, WriteTimeout)
    assert stream.closed
    conn._outbox.append(b"y" * 100)
    with pytest.raises(WriteError):
        await conn._flush()
    assert stream.sent == b"x" * 10


async def _upload_app(request: Request) -> Response:
    body = await request.aread()
    return Response(200, content=hashlib.sha256(body).hexdigest().encode())


async def test_random_cancellations_never_hurt_neighbouring_h2_requests() -> None:
    # Requests on one HTTP/2 connection are cancelled at random moments (before,
    # during and after their frames are written) while others upload and download
    # beside them: the others see no error, and the connection is never replaced.
    rng = random.Random(14)
    payload = rng.randbytes(256 * 1024)
    digest = hashlib.sha256(payload).hexdigest().encode()
    errors: list[BaseException] = []
    completed = 0
    cancelled = 0
    async with (
        AsyncServer(_upload_app, port=0) as server,
        AsyncClient(timeout=10.0, http2_prior_knowledge=True) as client,
    ):
        url = server.url + "/"

        async def neighbour() -> None:
            nonlocal completed
            while cancelled < 500:
                try:
                    response = await client.post(url, content=payload)
                    assert response.content == digest
                    completed += 1
                except Exception as exc:  # every failure is recorded, none expected
                    errors.append(exc)
                    return

        async def canceller() -> None:
            nonlocal cancelled
            for _ in range(500):
                with trio.move_on_after(rng.uniform(0, 0.004)):
                    await client.post(url, content=payload)
                cancelled += 1

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(neighbour)
                nursery.start_soon(canceller)
        assert errors == []
        assert completed > 0
        assert client.connections_opened == 1
