"""Deadlines on every client step: each surfaces as a typed error, quickly, never a hang."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Timeout
from hyperpy._backends import AsyncClock, AsyncTaskGroup
from hyperpy.testing import AsyncMemoryNetwork


async def test_read_timeout(net: AsyncMemoryNetwork, server: AsyncServer) -> None:
    async with AsyncClient(timeout=Timeout(read=0.2), network=net) as client:
        started = AsyncClock.now()
        with pytest.raises(hyperpy.ReadTimeout):
            await client.get(server.url + "/slow?delay=1")
        assert AsyncClock.now() - started < 0.9
        # The timed-out connection was discarded; a fresh one serves the next request.
        assert (await client.get(server.url + "/")).status == 200
        assert client.connections_opened == 2


async def test_read_timeout_per_request(server: AsyncServer, client: AsyncClient) -> None:
    started = AsyncClock.now()
    with pytest.raises(hyperpy.ReadTimeout) as info:
        await client.get(server.url + "/slow?delay=1", timeout=Timeout(read=0.2))
    assert AsyncClock.now() - started < 0.9
    assert isinstance(info.value, hyperpy.TimeoutException)
    assert isinstance(info.value, hyperpy.TransportError)
    # The client's own (5 s) timeout still applies to other requests.
    assert (await client.get(server.url + "/slow?delay=0.3")).text == "slow done"


async def test_read_timeout_mid_stream_then_next_request(
    server: AsyncServer, client: AsyncClient
) -> None:
    received = b""
    with pytest.raises(hyperpy.ReadTimeout):
        async with client.stream(
            "GET", server.url + "/stall?delay=1", timeout=Timeout(read=0.2)
        ) as response:
            assert response.status == 200
            async for chunk in response.aiter_bytes():
                received += chunk
    assert received == b"first chunk;"
    response = await client.get(server.url + "/")
    assert response.text == "ok"
    assert client.connections_opened == 2  # the half-read connection was not reused


async def test_connect_error_on_closed_port(closed_port: int) -> None:
    async with AsyncClient(timeout=2.0) as client:
        started = AsyncClock.now()
        with pytest.raises(hyperpy.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{closed_port}/")
        assert AsyncClock.now() - started < 1.5
    assert str(closed_port) in str(info.value)
    assert isinstance(info.value, hyperpy.NetworkError)
    assert client.connections_opened == 0


async def test_connect_timeout(full_backlog_port: int) -> None:
    async with AsyncClient(timeout=Timeout(connect=0.3)) as client:
        started = AsyncClock.now()
        with pytest.raises(hyperpy.ConnectTimeout):
            await client.get(f"http://127.0.0.1:{full_backlog_port}/")
        assert AsyncClock.now() - started < 1.5


async def test_write_timeout(net: AsyncMemoryNetwork, server: AsyncServer) -> None:
    # /slow never reads the request body: once the socket buffers are full, the
    # client's sends stall and the write deadline fires.
    async def huge() -> AsyncIterator[bytes]:
        block = b"w" * 65536
        for _ in range(1024):  # 64 MiB, far beyond loopback socket buffers
            yield block

    async with AsyncClient(timeout=Timeout(write=0.3), network=net) as client:
        started = AsyncClock.now()
        with pytest.raises(hyperpy.WriteTimeout):
            await client.post(server.url + "/slow?delay=1", content=huge())
        assert AsyncClock.now() - started < 1.8


async def test_pool_timeout(net: AsyncMemoryNetwork, server: AsyncServer) -> None:
    results: dict[str, object] = {}

    async def slow() -> None:
        results["slow"] = (await client.get(server.url + "/slow?delay=0.8")).text

    async with AsyncClient(max_connections=1, timeout=Timeout(pool=0.2), network=net) as client:
        async with AsyncTaskGroup() as group:
            group.start_soon(slow)
            await AsyncClock.sleep(0.2)  # the only connection is now busy
            started = AsyncClock.now()
            with pytest.raises(hyperpy.PoolTimeout):
                await client.get(server.url + "/")
            assert AsyncClock.now() - started < 0.6
        assert results["slow"] == "slow done"
        # Free again: the pooled connection serves the next request.
        assert (await client.get(server.url + "/")).status == 200
        assert client.connections_opened == 1


async def test_max_connections_makes_requests_wait(
    net: AsyncMemoryNetwork, server: AsyncServer
) -> None:
    ports: list[int] = []

    async def fetch() -> None:
        response = await client.get(server.url + "/slow?delay=0.1")
        assert response.text == "slow done"
        ports.append((await client.get(server.url + "/client")).json()["port"])

    async with AsyncClient(max_connections=1, timeout=5.0, network=net) as client:
        async with AsyncTaskGroup() as group:
            for _ in range(4):
                group.start_soon(fetch)
        assert len(ports) == 4
        assert len(set(ports)) == 1
        assert client.connections_opened == 1


async def test_concurrent_requests_open_parallel_connections(
    net: AsyncMemoryNetwork, server: AsyncServer
) -> None:
    async def fetch() -> None:
        assert (await client.get(server.url + "/slow?delay=0.3")).text == "slow done"

    async with AsyncClient(timeout=5.0, network=net) as client:
        started = AsyncClock.now()
        async with AsyncTaskGroup() as group:
            for _ in range(5):
                group.start_soon(fetch)
        assert AsyncClock.now() - started < 1.2  # in parallel, not 5 x 0.3 s in a row
        assert client.connections_opened == 5
        # All five went back to the pool: five more requests open nothing new.
        async with AsyncTaskGroup() as group:
            for _ in range(5):
                group.start_soon(fetch)
        assert client.connections_opened == 5
