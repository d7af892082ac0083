"""WebSockets end to end: native handlers accept them, the client opens them.

hyperpy's server and client over real loopback sockets (and TLS), in both worlds
(the blocking twin is generated). Independent peers are in tests/interop.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

import hyperpy
from hyperpy import AsyncClient, AsyncServer, Request, Response
from hyperpy._backends import AsyncClock


async def app(request: Request) -> Response:
    upgrade = request.upgrade
    if request.path == "/plain":
        return Response(200, text="no websocket here")
    if upgrade is None:
        return Response(426, text="WebSocket only")
    if request.path == "/refuse":
        return Response(403, text="not you")
    subprotocol = "chat.v2" if "chat.v2" in upgrade.subprotocols else None
    limit = 1024 if request.path == "/small" else 1024 * 1024
    ws = await upgrade.accept_websocket(subprotocol, max_message_size=limit)
    if request.path == "/bye":
        await ws.close(4001, "bye now")
        return Response(200)
    if request.path == "/drop":
        await ws.send("about to vanish")
        await ws._stream.aclose()  # no close frame: a broken peer
        return Response(200)
    try:
        async for message in ws:
            await ws.send(message)  # echo, text as text and bytes as bytes
    except hyperpy.WebSocketClosed as closed:
        CLOSES.append(closed.code)
    else:
        CLOSES.append(ws.closed.code if ws.closed is not None else None)
    await ws.close()
    return Response(200)


CLOSES: list[int | None] = []  # the close codes the echo saw, in order


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(app, port=0) as server:
        yield server


def ws_url(server: AsyncServer, path: str) -> str:
    return server.url.replace("http://", "ws://").replace("https://", "wss://") + path


async def test_echo_text_and_bytes(server: AsyncServer) -> None:
    async with AsyncClient() as client, client.websocket(ws_url(server, "/echo")) as ws:
        await ws.send("héllo")
        assert await ws.receive() == "héllo"
        await ws.send(b"\x00\x01" * 50_000)
        assert await ws.receive_bytes() == b"\x00\x01" * 50_000
        await ws.ping(b"are you there")
        await ws.send_text("after the ping")
        assert await ws.receive_text() == "after the ping"
        # The same server still answers plain requests.
        assert (await client.get(server.url + "/plain")).text == "no websocket here"


async def test_subprotocol_is_negotiated(server: AsyncServer) -> None:
    async with AsyncClient() as client:
        async with client.websocket(
            ws_url(server, "/echo"), subprotocols=["chat.v1", "chat.v2"]
        ) as ws:
            assert ws.subprotocol == "chat.v2"
        async with client.websocket(ws_url(server, "/echo"), subprotocols=["x"]) as ws:
            assert ws.subprotocol is None


async def test_the_block_closes_it_with_1000_or_1011_if_it_raised(server: AsyncServer) -> None:
    CLOSES.clear()
    async with AsyncClient() as client:
        async with client.websocket(ws_url(server, "/echo")) as ws:
            await ws.send("hi")
            assert await ws.receive(timeout=5) == "hi"
        with pytest.raises(LookupError):
            async with client.websocket(ws_url(server, "/echo")) as ws:
                raise LookupError("the block failed")
    for _ in range(500):  # the server's side ends just after ours: at most 5 s
        if len(CLOSES) == 2:
            break
        await AsyncClock.sleep(0.01)
    assert sorted(CLOSES) == [1000, 1011]  # (the server's two sides may end in either order)


async def test_close_codes_reach_the_other_side(server: AsyncServer) -> None:
    async with AsyncClient() as client, client.websocket(ws_url(server, "/bye")) as ws:
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            await ws.receive(timeout=5)
        assert (caught.value.code, caught.value.reason) == (4001, "bye now")
        assert ws.closed is not None and ws.closed.code == 4001
        with pytest.raises(hyperpy.WebSocketClosed):
            await ws.send("too late")


async def test_a_message_over_the_limit_closes_with_1009(server: AsyncServer) -> None:
    async with AsyncClient() as client, client.websocket(ws_url(server, "/small")) as ws:
        await ws.send("x" * 100)
        assert await ws.receive() == "x" * 100
        await ws.send("x" * 5000)
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            await ws.receive(timeout=5)
        assert caught.value.code == 1009


async def test_client_side_limit(server: AsyncServer) -> None:
    async with AsyncClient() as client:
        async with client.websocket(ws_url(server, "/echo"), max_message_size=10) as ws:
            await ws.send("x" * 11)  # the server echoes it; we refuse it
            with pytest.raises(hyperpy.WebSocketClosed) as caught:
                await ws.receive(timeout=5)
            assert caught.value.code == 1009


async def test_a_refused_handshake_is_typed(server: AsyncServer) -> None:
    async with AsyncClient() as client:
        with pytest.raises(hyperpy.WebSocketHandshakeError) as caught:
            async with client.websocket(ws_url(server, "/refuse")):
                pass  # pragma: no cover
        assert caught.value.status == 403


async def test_a_broken_peer_is_typed(server: AsyncServer) -> None:
    async with AsyncClient() as client, client.websocket(ws_url(server, "/drop")) as ws:
        assert await ws.receive(timeout=5) == "about to vanish"
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            await ws.receive(timeout=5)
        assert caught.value.code == 1006


async def test_iteration_ends_on_a_normal_close(server: AsyncServer) -> None:
    async with AsyncClient() as client, client.websocket(ws_url(server, "/echo")) as ws:
        for index in range(3):
            await ws.send(f"m{index}")
        received = []
        async for message in ws:
            received.append(message)
            if len(received) == 3:
                await ws.close()
        assert received == ["m0", "m1", "m2"]
        assert ws.closed is not None and ws.closed.code == 1000


async def test_wss_over_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    async with (
        AsyncServer(app, port=0, ssl=server_ssl_context) as server,
        AsyncClient(verify=client_ssl_context, http2=True) as client,
        client.websocket(ws_url(server, "/echo")) as ws,
    ):
        start = AsyncClock.now()
        await ws.send("secure")
        assert await ws.receive(timeout=5) == "secure"
        assert AsyncClock.now() - start < 5
