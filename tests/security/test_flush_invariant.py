"""The flush invariant: a connection is closed only after every byte of its responses
was written, even when the server shuts down during large HTTP/2 downloads by a
peer that reads its socket slowly.

Two ways this failed before: the final GOAWAY's half-close overtook response bytes
another task was still sending, and the peer's last WINDOW_UPDATE after our final
GOAWAY made the reader abort and close the socket with input unread, so TCP reset
the connection and the peer lost what its kernel had not handed over yet. The peer
here is a raw socket with a small receive buffer, read a little at a time, that
keeps returning credit, as a slow browser would; hyperpy's sans-IO HTTP/2 core
plays its protocol side (it copes with frames after a GOAWAY, which h2 does not).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator

import pytest
import trio

import hyperpy
from hyperpy import Request, Response
from hyperpy._core.h2 import H2Protocol
from hyperpy._core.h2_heads import request_headers

SIZE = 4 * 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB
STREAMS = 3
TRIALS = 3


async def _blocks() -> AsyncIterator[bytes]:
    for _ in range(SIZE // len(BLOCK)):
        yield BLOCK


def _blocks_sync() -> object:
    for _ in range(SIZE // len(BLOCK)):
        yield BLOCK


async def async_app(request: Request) -> Response:
    if request.path == "/stream":
        return Response(200, content=_blocks())
    return Response(200, content=BLOCK * (SIZE // len(BLOCK)))


def sync_app(request: Request) -> Response:
    if request.path == "/stream":
        return Response(200, content=_blocks_sync())  # type: ignore[arg-type]
    return Response(200, content=BLOCK * (SIZE // len(BLOCK)))


def slow_download(
    address: tuple[str, int], path: str, window: int, started: threading.Event
) -> list[int]:
    """Download ``path`` on STREAMS streams of one connection, reading slowly;
    the bytes each stream received (until its end, a reset, or the close)."""
    settings = hyperpy.H2Settings(initial_window_size=window, connection_window_size=window)
    proto = H2Protocol(client_side=True, settings=settings)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(15)
    sock.connect(address)
    received: dict[int, int] = {}
    try:
        proto.start()
        for _ in range(STREAMS):
            headers = request_headers("GET", "http", "h", path, [])
            received[proto.open_stream(headers, end_stream=True)] = 0
        sock.sendall(proto.data_to_send())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                data = sock.recv(8192)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            try:
                proto.receive(data, time.monotonic())
            except hyperpy.RemoteProtocolError:
                break
            for sid in received:
                while (chunk := proto.read(sid)) is not None:
                    received[sid] += len(chunk)
                    started.set()
            out = proto.data_to_send()  # credit for what was read
            if out:
                try:
                    sock.sendall(out)
                except OSError:
                    pass  # the server closed its side: keep reading what it sent
            time.sleep(0.0005)  # a slow reader
    finally:
        sock.close()
    return list(received.values())


def _threads_trial(path: str, window: int) -> list[int]:
    with hyperpy.Server(sync_app, port=0) as server:
        assert server.address is not None
        started = threading.Event()
        results: list[list[int]] = []

        def download(address: tuple[str, int]) -> None:
            results.append(slow_download(address, path, window, started))

        reader = threading.Thread(target=download, args=(server.address,))
        reader.start()
        assert started.wait(10)
        server.shutdown(grace=20.0)
        reader.join(30)
    [received] = results
    return received


async def _trio_trial(path: str, window: int) -> list[int]:
    async with hyperpy.AsyncServer(async_app, port=0) as server:
        assert server.address is not None
        started = threading.Event()
        results: list[list[int]] = []

        async def download(address: tuple[str, int]) -> None:
            results.append(
                await trio.to_thread.run_sync(slow_download, address, path, window, started)
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(download, server.address)
            await trio.to_thread.run_sync(started.wait, 10)
            await server.shutdown(grace=20.0)
    [received] = results
    return received


@pytest.mark.parametrize("path", ["/bytes", "/stream"])
@pytest.mark.parametrize("window", [65535, 4 * 1024 * 1024], ids=["small", "large"])
def test_threads_shutdown_finishes_slow_downloads(path: str, window: int) -> None:
    for _ in range(TRIALS):
        assert _threads_trial(path, window) == [SIZE] * STREAMS


@pytest.mark.parametrize("path", ["/bytes", "/stream"])
@pytest.mark.parametrize("window", [65535, 4 * 1024 * 1024], ids=["small", "large"])
async def test_trio_shutdown_finishes_slow_downloads(path: str, window: int) -> None:
    for _ in range(TRIALS):
        assert await _trio_trial(path, window) == [SIZE] * STREAMS
