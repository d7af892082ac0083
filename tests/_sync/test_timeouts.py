# GENERATED from tests/_async/test_timeouts.py by scripts/unasync.py: do not edit.
"""Deadlines on every client step: each surfaces as a typed error, quickly, never a hang."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Client, Server, Timeout
from hyperpy._backends import SyncClock, SyncTaskGroup
from hyperpy.testing import MemoryNetwork


def test_read_timeout(net: MemoryNetwork, server: Server) -> None:
    with Client(timeout=Timeout(read=0.2), network=net) as client:
        started = SyncClock.now()
        with pytest.raises(hyperpy.ReadTimeout):
            client.get(server.url + "/slow?delay=1")
        assert SyncClock.now() - started < 0.9
        # The timed-out connection was discarded; a fresh one serves the next request.
        assert (client.get(server.url + "/")).status == 200
        assert client.connections_opened == 2


def test_read_timeout_per_request(server: Server, client: Client) -> None:
    started = SyncClock.now()
    with pytest.raises(hyperpy.ReadTimeout) as info:
        client.get(server.url + "/slow?delay=1", timeout=Timeout(read=0.2))
    assert SyncClock.now() - started < 0.9
    assert isinstance(info.value, hyperpy.TimeoutException)
    assert isinstance(info.value, hyperpy.TransportError)
    # The client's own (5 s) timeout still applies to other requests.
    assert (client.get(server.url + "/slow?delay=0.3")).text == "slow done"


def test_read_timeout_mid_stream_then_next_request(server: Server, client: Client) -> None:
    received = b""
    with pytest.raises(hyperpy.ReadTimeout):
        with client.stream(
            "GET", server.url + "/stall?delay=1", timeout=Timeout(read=0.2)
        ) as response:
            assert response.status == 200
            for chunk in response.iter_bytes():
                received += chunk
    assert received == b"first chunk;"
    response = client.get(server.url + "/")
    assert response.text == "ok"
    assert client.connections_opened == 2  # the half-read connection was not reused


def test_connect_error_on_closed_port(closed_port: int) -> None:
    with Client(timeout=2.0) as client:
        started = SyncClock.now()
        with pytest.raises(hyperpy.ConnectError) as info:
            client.get(f"http://127.0.0.1:{closed_port}/")
        assert SyncClock.now() - started < 1.5
    assert str(closed_port) in str(info.value)
    assert isinstance(info.value, hyperpy.NetworkError)
    assert client.connections_opened == 0


def test_connect_timeout(full_backlog_port: int) -> None:
    with Client(timeout=Timeout(connect=0.3)) as client:
        started = SyncClock.now()
        with pytest.raises(hyperpy.ConnectTimeout):
            client.get(f"http://127.0.0.1:{full_backlog_port}/")
        assert SyncClock.now() - started < 1.5


def test_write_timeout(net: MemoryNetwork, server: Server) -> None:
    # /slow never reads the request body: once the socket buffers are full, the
    # client's sends stall and the write deadline fires.
    def huge() -> Iterator[bytes]:
        block = b"w" * 65536
        for _ in range(1024):  # 64 MiB, far beyond loopback socket buffers
            yield block

    with Client(timeout=Timeout(write=0.3), network=net) as client:
        started = SyncClock.now()
        with pytest.raises(hyperpy.WriteTimeout):
            client.post(server.url + "/slow?delay=1", content=huge())
        assert SyncClock.now() - started < 1.8


def test_pool_timeout(net: MemoryNetwork, server: Server) -> None:
    results: dict[str, object] = {}

    def slow() -> None:
        results["slow"] = (client.get(server.url + "/slow?delay=0.8")).text

    with Client(max_connections=1, timeout=Timeout(pool=0.2), network=net) as client:
        with SyncTaskGroup() as group:
            group.start_soon(slow)
            SyncClock.sleep(0.2)  # the only connection is now busy
            started = SyncClock.now()
            with pytest.raises(hyperpy.PoolTimeout):
                client.get(server.url + "/")
            assert SyncClock.now() - started < 0.6
        assert results["slow"] == "slow done"
        # Free again: the pooled connection serves the next request.
        assert (client.get(server.url + "/")).status == 200
        assert client.connections_opened == 1


def test_max_connections_makes_requests_wait(net: MemoryNetwork, server: Server) -> None:
    ports: list[int] = []

    def fetch() -> None:
        response = client.get(server.url + "/slow?delay=0.1")
        assert response.text == "slow done"
        ports.append((client.get(server.url + "/client")).json()["port"])

    with Client(max_connections=1, timeout=5.0, network=net) as client:
        with SyncTaskGroup() as group:
            for _ in range(4):
                group.start_soon(fetch)
        assert len(ports) == 4
        assert len(set(ports)) == 1
        assert client.connections_opened == 1


def test_concurrent_requests_open_parallel_connections(net: MemoryNetwork, server: Server) -> None:
    def fetch() -> None:
        assert (client.get(server.url + "/slow?delay=0.3")).text == "slow done"

    with Client(timeout=5.0, network=net) as client:
        started = SyncClock.now()
        with SyncTaskGroup() as group:
            for _ in range(5):
                group.start_soon(fetch)
        assert SyncClock.now() - started < 1.2  # in parallel, not 5 x 0.3 s in a row
        assert client.connections_opened == 5
        # All five went back to the pool: five more requests open nothing new.
        with SyncTaskGroup() as group:
            for _ in range(5):
                group.start_soon(fetch)
        assert client.connections_opened == 5
