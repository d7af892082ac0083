# GENERATED from tests/_async/test_shutdown.py by scripts/unasync.py: do not edit.
"""Graceful shutdown: requests in flight finish, new connections are refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Client, Request, Response, Server, ServerLimits
from hyperpy._backends import SyncClock, SyncEvent, SyncTaskGroup
from hyperpy.testing import MemoryNetwork

from .helpers import app, raw_connection, read_until_eof

BODY = b"s" * 300_000


def test_shutdown_lets_request_in_flight_finish(net: MemoryNetwork) -> None:
    started = SyncEvent()
    results: dict[str, Response] = {}

    def slow(request: Request) -> Response:
        started.set()
        SyncClock.sleep(0.5)
        return Response(200, content=BODY)

    with Server(slow, port=0, network=net) as server:
        assert server.address is not None
        port = server.address[1]
        with Client(timeout=5.0, network=net) as client:

            def fetch() -> None:
                results["response"] = client.get(server.url + "/")

            with SyncTaskGroup() as group:
                group.start_soon(fetch)
                assert started.wait(5.0)
                begin = SyncClock.now()
                server.shutdown(grace=5.0)
                elapsed = SyncClock.now() - begin
            response = results["response"]
            assert response.status == 200
            assert response.content == BODY
            assert response.headers["connection"] == "close"
            assert 0.2 < elapsed < 4.0  # it waited for the request, not for the grace

            # Refused now: nothing listens any more.
            with pytest.raises(hyperpy.ConnectError):
                net.connect_tcp("127.0.0.1", port, 2.0)
            with pytest.raises(hyperpy.ConnectError):
                client.get(server.url + "/")


def test_shutdown_closes_idle_keepalive_connections(net: MemoryNetwork) -> None:
    with Server(app, port=0, network=net) as server:
        assert server.address is not None
        with raw_connection(server) as stream:
            stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
            data = stream.receive(65536, 5.0)
            assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok")
            begin = SyncClock.now()
            server.shutdown(grace=5.0)
            assert SyncClock.now() - begin < 2.5
            assert read_until_eof(stream, limit=3.0) == b""


def test_shutdown_grace_expires_for_stuck_request(net: MemoryNetwork) -> None:
    started = SyncEvent()

    def stuck(request: Request) -> Response:
        started.set()
        SyncClock.sleep(1.5)
        return Response(200, text="too late")

    with Server(stuck, port=0, network=net) as server:
        assert server.address is not None
        with raw_connection(server) as stream:
            stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 5.0)
            assert started.wait(5.0)
            begin = SyncClock.now()
            server.shutdown(grace=0.3)
            assert SyncClock.now() - begin < 2.0
            # The connection was aborted: no response, just the end of the stream.
            try:
                data = read_until_eof(stream, limit=5.0)
            except hyperpy.ReadError:
                data = b""  # aborted with a reset: also acceptable
            assert b"too late" not in data


def test_shutdown_while_rejected_connection_lingers(net: MemoryNetwork) -> None:
    # A client got a 400 and keeps its socket open while the server lingers on it.
    with Server(app, port=0, network=net) as server:
        assert server.address is not None
        with raw_connection(server) as stream:
            stream.send_all(b"NOT HTTP\r\n\r\n", 5.0)
            data = stream.receive(65536, 5.0)
            assert data.startswith(b"HTTP/1.1 400")
            with SyncTaskGroup() as group:
                group.start_soon(server.shutdown, 3.0)  # must neither crash nor hang
                SyncClock.sleep(0.2)  # shutdown now runs while the server lingers
                assert read_until_eof(stream, limit=3.0) == b""
                stream.close()  # ends the linger


def test_shutdown_not_blocked_by_silent_connection(net: MemoryNetwork) -> None:
    limits = ServerLimits(header_read_timeout=3.0)
    with Server(app, port=0, limits=limits, network=net) as server:
        assert server.address is not None
        stream = net.connect_tcp(*server.address, 5.0)
        SyncClock.sleep(0.2)  # accepted, and silent
        begin = SyncClock.now()
        server.shutdown(grace=0.5)
    elapsed = SyncClock.now() - begin
    stream.close()
    assert elapsed < 2.0


def test_leaving_the_block_when_the_shutdown_fails(
    net: MemoryNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown cut short on the way out (an error, an interrupt) still stops the
    server: leaving the block must not wait for it forever."""

    def broken_shutdown(grace: float = 10.0) -> None:
        raise RuntimeError("the shutdown failed")

    start = SyncClock.now()
    with pytest.raises(RuntimeError, match="the shutdown failed"):
        with Server(app, port=0, network=net) as server:
            with Client(network=net) as client:
                assert (client.get(server.url + "/")).status == 200
            monkeypatch.setattr(server, "shutdown", broken_shutdown)
    assert SyncClock.now() - start < 3.0
    with pytest.raises(hyperpy.ConnectError):  # nothing listens any more
        net.connect_tcp("127.0.0.1", 80, 1.0)


# -- the flush invariant: a shutdown never truncates a response --------------------------

DOWNLOAD = 4 * 1024 * 1024


def _download_app(request: Request) -> Response:
    if request.path == "/bytes":
        return Response(200, content=BLOCK * (DOWNLOAD // len(BLOCK)))
    return Response(200, content=_blocks(DOWNLOAD))


BLOCK = bytes(range(256)) * 256  # 64 KiB


def _blocks(size: int) -> Iterator[bytes]:
    for _ in range(size // len(BLOCK)):
        yield BLOCK


@pytest.mark.parametrize("transport", ["memory", "loopback"])
@pytest.mark.parametrize("window", ["small", "large"])
@pytest.mark.parametrize("body", ["bytes", "stream"])
def test_http2_shutdown_lets_slow_downloads_finish(transport: str, window: str, body: str) -> None:
    """Shutdown during 4 MiB HTTP/2 downloads by a slow reader: every stream completes,
    none is reset or cut short (the final GOAWAY and the half-close wait for the
    writer to have sent every byte; the client's last credit after it is ignored)."""
    net = MemoryNetwork() if transport == "memory" else None
    size = 65535 if window == "small" else 1024 * 1024
    settings = hyperpy.H2Settings(initial_window_size=size, connection_window_size=size)
    with Server(_download_app, port=0, network=net) as server:
        with Client(
            http2_prior_knowledge=True, network=net, h2_settings=settings, timeout=10
        ) as client:
            results: list[int] = []
            started: list[int] = []
            all_started = SyncEvent()

            def download() -> None:
                received = 0
                with client.stream("GET", f"{server.url}/{body}") as response:
                    for chunk in response.iter_bytes():
                        if not received:
                            started.append(1)
                            if len(started) == 3:
                                all_started.set()
                        received += len(chunk)
                        SyncClock.sleep(0.002)  # a slow reader
                results.append(received)

            with SyncTaskGroup() as tasks:
                for _ in range(3):
                    tasks.start_soon(download)
                assert all_started.wait(5.0)  # three streams in flight
                server.shutdown(grace=10.0)
    assert results == [DOWNLOAD] * 3
