"""Graceful shutdown: requests in flight finish, new connections are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Request, Response, ServerLimits
from hyperpy._backends import AsyncClock, AsyncEvent, AsyncTaskGroup
from hyperpy.testing import AsyncMemoryNetwork

from .helpers import app, raw_connection, read_until_eof

BODY = b"s" * 300_000


async def test_shutdown_lets_request_in_flight_finish(net: AsyncMemoryNetwork) -> None:
    started = AsyncEvent()
    results: dict[str, Response] = {}

    async def slow(request: Request) -> Response:
        started.set()
        await AsyncClock.sleep(0.5)
        return Response(200, content=BODY)

    async with AsyncServer(slow, port=0, network=net) as server:
        assert server.address is not None
        port = server.address[1]
        async with AsyncClient(timeout=5.0, network=net) as client:

            async def fetch() -> None:
                results["response"] = await client.get(server.url + "/")

            async with AsyncTaskGroup() as group:
                group.start_soon(fetch)
                assert await started.wait(5.0)
                begin = AsyncClock.now()
                await server.shutdown(grace=5.0)
                elapsed = AsyncClock.now() - begin
            response = results["response"]
            assert response.status == 200
            assert response.content == BODY
            assert response.headers["connection"] == "close"
            assert 0.2 < elapsed < 4.0  # it waited for the request, not for the grace

            # Refused now: nothing listens any more.
            with pytest.raises(hyperpy.ConnectError):
                await net.connect_tcp("127.0.0.1", port, 2.0)
            with pytest.raises(hyperpy.ConnectError):
                await client.get(server.url + "/")


async def test_shutdown_closes_idle_keepalive_connections(net: AsyncMemoryNetwork) -> None:
    async with AsyncServer(app, port=0, network=net) as server:
        assert server.address is not None
        async with raw_connection(server) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
            data = await stream.receive(65536, 5.0)
            assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok")
            begin = AsyncClock.now()
            await server.shutdown(grace=5.0)
            assert AsyncClock.now() - begin < 2.5
            assert await read_until_eof(stream, limit=3.0) == b""


async def test_shutdown_grace_expires_for_stuck_request(net: AsyncMemoryNetwork) -> None:
    started = AsyncEvent()

    async def stuck(request: Request) -> Response:
        started.set()
        await AsyncClock.sleep(1.5)
        return Response(200, text="too late")

    async with AsyncServer(stuck, port=0, network=net) as server:
        assert server.address is not None
        async with raw_connection(server) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
            assert await started.wait(5.0)
            begin = AsyncClock.now()
            await server.shutdown(grace=0.3)
            assert AsyncClock.now() - begin < 2.0
            # The connection was aborted: no response, just the end of the stream.
            try:
                data = await read_until_eof(stream, limit=5.0)
            except hyperpy.ReadError:
                data = b""  # aborted with a reset: also acceptable
            assert b"too late" not in data


async def test_shutdown_while_rejected_connection_lingers(net: AsyncMemoryNetwork) -> None:
    # A client got a 400 and keeps its socket open while the server lingers on it.
    async with AsyncServer(app, port=0, network=net) as server:
        assert server.address is not None
        async with raw_connection(server) as stream:
            await stream.send_all(b"NOT HTTP\r\n\r\n", 5.0)
            data = await stream.receive(65536, 5.0)
            assert data.startswith(b"HTTP/1.1 400")
            async with AsyncTaskGroup() as group:
                group.start_soon(server.shutdown, 3.0)  # must neither crash nor hang
                await AsyncClock.sleep(0.2)  # shutdown now runs while the server lingers
                assert await read_until_eof(stream, limit=3.0) == b""
                await stream.aclose()  # ends the linger


async def test_shutdown_not_blocked_by_silent_connection(net: AsyncMemoryNetwork) -> None:
    limits = ServerLimits(header_read_timeout=3.0)
    async with AsyncServer(app, port=0, limits=limits, network=net) as server:
        assert server.address is not None
        stream = await net.connect_tcp(*server.address, 5.0)
        await AsyncClock.sleep(0.2)  # accepted, and silent
        begin = AsyncClock.now()
        await server.shutdown(grace=0.5)
    elapsed = AsyncClock.now() - begin
    await stream.aclose()
    assert elapsed < 2.0


async def test_leaving_the_block_when_the_shutdown_fails(
    net: AsyncMemoryNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown cut short on the way out (an error, an interrupt) still stops the
    server: leaving the block must not wait for it forever."""

    async def broken_shutdown(grace: float = 10.0) -> None:
        raise RuntimeError("the shutdown failed")

    start = AsyncClock.now()
    with pytest.raises(RuntimeError, match="the shutdown failed"):
        async with AsyncServer(app, port=0, network=net) as server:
            async with AsyncClient(network=net) as client:
                assert (await client.get(server.url + "/")).status == 200
            monkeypatch.setattr(server, "shutdown", broken_shutdown)
    assert AsyncClock.now() - start < 3.0
    with pytest.raises(hyperpy.ConnectError):  # nothing listens any more
        await net.connect_tcp("127.0.0.1", 80, 1.0)


# -- the flush invariant: a shutdown never truncates a response --------------------------

DOWNLOAD = 4 * 1024 * 1024


async def _download_app(request: Request) -> Response:
    if request.path == "/bytes":
        return Response(200, content=BLOCK * (DOWNLOAD // len(BLOCK)))
    return Response(200, content=_blocks(DOWNLOAD))


BLOCK = bytes(range(256)) * 256  # 64 KiB


async def _blocks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // len(BLOCK)):
        yield BLOCK


@pytest.mark.parametrize("transport", ["memory", "loopback"])
@pytest.mark.parametrize("window", ["small", "large"])
@pytest.mark.parametrize("body", ["bytes", "stream"])
async def test_http2_shutdown_lets_slow_downloads_finish(
    transport: str, window: str, body: str
) -> None:
    """Shutdown during 4 MiB HTTP/2 downloads by a slow reader: every stream completes,
    none is reset or cut short (the final GOAWAY and the half-close wait for the
    writer to have sent every byte; the client's last credit after it is ignored)."""
    net = AsyncMemoryNetwork() if transport == "memory" else None
    size = 65535 if window == "small" else 1024 * 1024
    settings = hyperpy.H2Settings(initial_window_size=size, connection_window_size=size)
    async with AsyncServer(_download_app, port=0, network=net) as server:
        async with AsyncClient(
            http2_prior_knowledge=True, network=net, h2_settings=settings, timeout=10
        ) as client:
            results: list[int] = []
            started: list[int] = []
            all_started = AsyncEvent()

            async def download() -> None:
                received = 0
                async with client.stream("GET", f"{server.url}/{body}") as response:
                    async for chunk in response.aiter_bytes():
                        if not received:
                            started.append(1)
                            if len(started) == 3:
                                all_started.set()
                        received += len(chunk)
                        await AsyncClock.sleep(0.002)  # a slow reader
                results.append(received)

            async with AsyncTaskGroup() as tasks:
                for _ in range(3):
                    tasks.start_soon(download)
                assert await all_started.wait(5.0)  # three streams in flight
                await server.shutdown(grace=10.0)
    assert results == [DOWNLOAD] * 3
