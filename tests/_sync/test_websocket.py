# GENERATED from tests/_async/test_websocket.py by scripts/unasync.py: do not edit.
"""WebSockets end to end: native handlers accept them, the client opens them.

hyperpy's server and client over real loopback sockets (and TLS), in both worlds
(the blocking twin is generated). Independent peers are in tests/interop.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

import hyperpy
from hyperpy import Client, Request, Response, Server
from hyperpy._backends import SyncClock


def app(request: Request) -> Response:
    upgrade = request.upgrade
    if request.path == "/plain":
        return Response(200, text="no websocket here")
    if upgrade is None:
        return Response(426, text="WebSocket only")
    if request.path == "/refuse":
        return Response(403, text="not you")
    subprotocol = "chat.v2" if "chat.v2" in upgrade.subprotocols else None
    limit = 1024 if request.path == "/small" else 1024 * 1024
    ws = upgrade.accept_websocket(subprotocol, max_message_size=limit)
    if request.path == "/bye":
        ws.close(4001, "bye now")
        return Response(200)
    if request.path == "/drop":
        ws.send("about to vanish")
        ws._stream.close()  # no close frame: a broken peer
        return Response(200)
    try:
        for message in ws:
            ws.send(message)  # echo, text as text and bytes as bytes
    except hyperpy.WebSocketClosed as closed:
        CLOSES.append(closed.code)
    else:
        CLOSES.append(ws.closed.code if ws.closed is not None else None)
    ws.close()
    return Response(200)


CLOSES: list[int | None] = []  # the close codes the echo saw, in order


@pytest.fixture
def server() -> Iterator[Server]:
    with Server(app, port=0) as server:
        yield server


def ws_url(server: Server, path: str) -> str:
    return server.url.replace("http://", "ws://").replace("https://", "wss://") + path


def test_echo_text_and_bytes(server: Server) -> None:
    with Client() as client, client.websocket(ws_url(server, "/echo")) as ws:
        ws.send("héllo")
        assert ws.receive() == "héllo"
        ws.send(b"\x00\x01" * 50_000)
        assert ws.receive_bytes() == b"\x00\x01" * 50_000
        ws.ping(b"are you there")
        ws.send_text("after the ping")
        assert ws.receive_text() == "after the ping"
        # The same server still answers plain requests.
        assert (client.get(server.url + "/plain")).text == "no websocket here"


def test_subprotocol_is_negotiated(server: Server) -> None:
    with Client() as client:
        with client.websocket(ws_url(server, "/echo"), subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
        with client.websocket(ws_url(server, "/echo"), subprotocols=["x"]) as ws:
            assert ws.subprotocol is None


def test_the_block_closes_it_with_1000_or_1011_if_it_raised(server: Server) -> None:
    CLOSES.clear()
    with Client() as client:
        with client.websocket(ws_url(server, "/echo")) as ws:
            ws.send("hi")
            assert ws.receive(timeout=5) == "hi"
        with pytest.raises(LookupError):
            with client.websocket(ws_url(server, "/echo")) as ws:
                raise LookupError("the block failed")
    for _ in range(500):  # the server's side ends just after ours: at most 5 s
        if len(CLOSES) == 2:
            break
        SyncClock.sleep(0.01)
    assert sorted(CLOSES) == [1000, 1011]  # (the server's two sides may end in either order)


def test_close_codes_reach_the_other_side(server: Server) -> None:
    with Client() as client, client.websocket(ws_url(server, "/bye")) as ws:
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            ws.receive(timeout=5)
        assert (caught.value.code, caught.value.reason) == (4001, "bye now")
        assert ws.closed is not None and ws.closed.code == 4001
        with pytest.raises(hyperpy.WebSocketClosed):
            ws.send("too late")


def test_a_message_over_the_limit_closes_with_1009(server: Server) -> None:
    with Client() as client, client.websocket(ws_url(server, "/small")) as ws:
        ws.send("x" * 100)
        assert ws.receive() == "x" * 100
        ws.send("x" * 5000)
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            ws.receive(timeout=5)
        assert caught.value.code == 1009


def test_client_side_limit(server: Server) -> None:
    with Client() as client:
        with client.websocket(ws_url(server, "/echo"), max_message_size=10) as ws:
            ws.send("x" * 11)  # the server echoes it; we refuse it
            with pytest.raises(hyperpy.WebSocketClosed) as caught:
                ws.receive(timeout=5)
            assert caught.value.code == 1009


def test_a_refused_handshake_is_typed(server: Server) -> None:
    with Client() as client:
        with pytest.raises(hyperpy.WebSocketHandshakeError) as caught:
            with client.websocket(ws_url(server, "/refuse")):
                pass  # pragma: no cover
        assert caught.value.status == 403


def test_a_broken_peer_is_typed(server: Server) -> None:
    with Client() as client, client.websocket(ws_url(server, "/drop")) as ws:
        assert ws.receive(timeout=5) == "about to vanish"
        with pytest.raises(hyperpy.WebSocketClosed) as caught:
            ws.receive(timeout=5)
        assert caught.value.code == 1006


def test_iteration_ends_on_a_normal_close(server: Server) -> None:
    with Client() as client, client.websocket(ws_url(server, "/echo")) as ws:
        for index in range(3):
            ws.send(f"m{index}")
        received = []
        for message in ws:
            received.append(message)
            if len(received) == 3:
                ws.close()
        assert received == ["m0", "m1", "m2"]
        assert ws.closed is not None and ws.closed.code == 1000


def test_wss_over_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    with (
        Server(app, port=0, ssl=server_ssl_context) as server,
        Client(verify=client_ssl_context, http2=True) as client,
        client.websocket(ws_url(server, "/echo")) as ws,
    ):
        start = SyncClock.now()
        ws.send("secure")
        assert ws.receive(timeout=5) == "secure"
        assert SyncClock.now() - start < 5
