"""WebSockets against an independent implementation (the ``websockets`` package):
its client against hyperpy's servers, and hyperpy's clients against its server,
in both worlds."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import trio
from peers import interop
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Client, Request, Response, Server


def sync_app(request: Request) -> Response:
    if request.upgrade is None:
        return Response(426)
    ws = request.upgrade.accept_websocket(
        "echo" if "echo" in request.upgrade.subprotocols else None
    )
    for message in ws:
        ws.send(message)
    return Response(200)


async def async_app(request: Request) -> Response:
    if request.upgrade is None:
        return Response(426)
    ws = await request.upgrade.accept_websocket(
        "echo" if "echo" in request.upgrade.subprotocols else None
    )
    async for message in ws:
        await ws.send(message)
    return Response(200)


def _exchange_with_websockets(url: str) -> None:
    # compression=None: hyperpy does not negotiate permessage-deflate.
    with connect(url, subprotocols=["echo"], compression=None, open_timeout=5) as ws:
        assert ws.subprotocol == "echo"
        ws.send("text ✓")
        assert ws.recv(timeout=5) == "text ✓"
        ws.send(b"\xff" * 100_000)
        assert ws.recv(timeout=5) == b"\xff" * 100_000
        ws.ping().wait(timeout=5)  # our server answers pings


@interop("websockets", "WebSocket", world="sync", role="server")
def test_websockets_client_against_the_blocking_server() -> None:
    with Server(sync_app, port=0) as server:
        _exchange_with_websockets(server.url.replace("http", "ws") + "/")


@interop("websockets", "WebSocket", world="async", role="server")
async def test_websockets_client_against_the_trio_server() -> None:
    async with AsyncServer(async_app, port=0) as server:
        await trio.to_thread.run_sync(
            _exchange_with_websockets, server.url.replace("http", "ws") + "/"
        )


@pytest.fixture
def websockets_server() -> Iterator[str]:
    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)
        # The iteration ends on our close frame; websockets replies with its own.

    with serve(echo, "127.0.0.1", 0, compression=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.socket.getsockname()[:2]
        yield f"ws://{host}:{port}/"
        server.shutdown()
        thread.join(5)


@interop("websockets", "WebSocket", world="sync", role="client")
def test_blocking_client_against_websockets_server(websockets_server: str) -> None:
    with Client() as client, client.websocket(websockets_server) as ws:
        ws.send("hello")
        assert ws.receive(timeout=5) == "hello"
        ws.send(b"\x00" * 70_000)
        assert ws.receive(timeout=5) == b"\x00" * 70_000
        ws.close()
        assert ws.closed is not None and ws.closed.code == 1000


@interop("websockets", "WebSocket", world="async", role="client")
async def test_trio_client_against_websockets_server(websockets_server: str) -> None:
    async with AsyncClient() as client, client.websocket(websockets_server) as ws:
        await ws.send("hello")
        assert await ws.receive(timeout=5) == "hello"
        await ws.close(4000, "done")
        assert ws.closed is not None and ws.closed.code == 4000
    with pytest.raises(hyperpy.WebSocketClosed):
        await ws.send("closed")
