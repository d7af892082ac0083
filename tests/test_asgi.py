"""ASGI apps on the trio server (not generated: ASGI is the trio world's):
Starlette over HTTP/1.1, h2c and TLS with HTTP/2, its lifespan and WebSockets,
and raw ASGI apps for disconnects, trailers and failures."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.sync.client import connect

import hyperpy
from hyperpy import AsyncClient, AsyncServer
from hyperpy.asgi import ASGIAdapter, LifespanFailed

EVENTS: list[str] = []


async def hello(request: StarletteRequest) -> Response:
    return PlainTextResponse(f"hello from {request.url.path} ({request.scope['http_version']})")


async def echo(request: StarletteRequest) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: StarletteRequest) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(5):
            yield f"chunk {index}\n".encode()
            await trio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/plain")


async def state(request: StarletteRequest) -> Response:
    return PlainTextResponse(request.state.started)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"echo: {text}")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    EVENTS.append("startup")
    yield {"started": "yes"}
    EVENTS.append("shutdown")


starlette_app = Starlette(
    routes=[
        Route("/", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/state", state),
        WebSocketRoute("/ws", ws_echo),
    ],
    lifespan=lifespan,  # type: ignore[arg-type]
)


@pytest.fixture
async def server() -> AsyncIterator[AsyncServer]:
    async with AsyncServer(ASGIAdapter(starlette_app), port=0) as server:
        yield server


@pytest.mark.parametrize("h2", [False, True])
async def test_starlette_over_http11_and_h2c(server: AsyncServer, h2: bool) -> None:
    async with AsyncClient(http2_prior_knowledge=h2) as client:
        version = "2" if h2 else "1.1"
        assert (await client.get(server.url + "/")).text == f"hello from / ({version})"
        big = bytes(range(256)) * 4096  # 1 MiB
        response = await client.post(server.url + "/echo", content=big)
        assert response.content == big
        async with client.stream("GET", server.url + "/stream") as streamed:
            lines = [line async for line in streamed.aiter_lines()]
        assert lines == [f"chunk {i}" for i in range(5)]
        assert (await client.get(server.url + "/state")).text == "yes"
        assert (await client.get(server.url + "/nowhere")).status == 404


async def test_starlette_over_tls_with_http2(
    server_ssl_context: ssl.SSLContext, h2_client_ssl_context: ssl.SSLContext
) -> None:
    async with (
        AsyncServer(ASGIAdapter(starlette_app), port=0, ssl=server_ssl_context) as server,
        AsyncClient(http2=True, verify=h2_client_ssl_context) as client,
    ):
        response = await client.get(server.url + "/")
        assert response.http_version == "2"
        assert response.text == "hello from / (2)"


async def test_lifespan_startup_and_shutdown() -> None:
    EVENTS.clear()
    async with AsyncServer(ASGIAdapter(starlette_app), port=0) as server:
        assert EVENTS == ["startup"]
        async with AsyncClient() as client:
            await client.get(server.url + "/")
    assert EVENTS == ["startup", "shutdown"]


async def test_a_failed_lifespan_startup_stops_the_server() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(LifespanFailed, match="no database"):
        async with AsyncServer(ASGIAdapter(failing), port=0):
            pass  # pragma: no cover


async def test_websocket_with_hyperpy_and_websockets_clients(server: AsyncServer) -> None:
    url = server.url.replace("http://", "ws://") + "/ws"
    async with AsyncClient() as client, client.websocket(url) as ws:
        await ws.send("hi")
        assert await ws.receive(timeout=5) == "echo: hi"

    def independent() -> str:
        with connect(url, compression=None, open_timeout=5) as peer:
            peer.send("from websockets")
            return str(peer.recv(timeout=5))

    assert await trio.to_thread.run_sync(independent) == "echo: from websockets"


async def test_disconnect_reaches_the_app_and_trailers_are_sent() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/trailers":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
            )
            await send({"type": "http.response.body", "body": b"data", "more_body": False})
            await send({"type": "http.response.trailers", "headers": [(b"x-sum", b"42")]})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        message = await receive()
        while message["type"] == "http.request":
            message = await receive()
        seen.append(message["type"])

    async with (
        AsyncServer(ASGIAdapter(app, lifespan="off"), port=0) as server,
        AsyncClient(http2_prior_knowledge=True) as client,
    ):
        response = await client.get(server.url + "/trailers")
        assert response.content == b"data"
        assert response.trailers["x-sum"] == "42"
        async with client.stream("GET", server.url + "/hang") as streamed:
            async for chunk in streamed.aiter_bytes():
                assert chunk == b"first"
                break  # leaving resets the stream: the app hears http.disconnect
        with trio.fail_after(5):
            while not seen:
                await trio.sleep(0.01)
    assert seen == ["http.disconnect"]


async def test_an_asyncio_only_app_fails_clearly(caplog: pytest.LogCaptureFixture) -> None:
    async def asyncio_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            asyncio.get_running_loop()  # RuntimeError under trio
        else:
            raise RuntimeError("lifespan unsupported")

    caplog.set_level(logging.ERROR, logger="hyperpy.asgi")
    async with AsyncServer(ASGIAdapter(asyncio_app), port=0) as server, AsyncClient() as client:
        response = await client.get(server.url + "/")
    assert response.status == 500
    assert any("needs asyncio" in record.getMessage() for record in caplog.records)


async def test_root_path_is_part_of_the_scope() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scopes.append(dict(scope))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async with (
        AsyncServer(ASGIAdapter(app, root_path="/api", lifespan="off"), port=0) as server,
        AsyncClient() as client,
    ):
        await client.get(server.url + "/caf%C3%A9?x=1", headers={"x-test": "1"})
    scope = scopes[0]
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/café"
    assert scope["raw_path"] == b"/caf%C3%A9"
    assert scope["query_string"] == b"x=1"
    assert (b"x-test", b"1") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    with pytest.raises(hyperpy.HTTPError):
        raise hyperpy.HTTPError("sanity")


async def test_a_reset_stream_cancels_its_app() -> None:
    ended: list[str] = []

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            await trio.sleep(10)
        finally:
            ended.append("cancelled")

    async with (
        AsyncServer(ASGIAdapter(slow, lifespan="off"), port=0) as server,
        AsyncClient(http2_prior_knowledge=True) as client,
    ):
        with trio.move_on_after(0.2):
            await client.get(server.url + "/")
        with trio.fail_after(5):
            while not ended:
                await trio.sleep(0.01)
    assert ended == ["cancelled"]


async def test_lifespan_shutdown_runs_when_the_grace_runs_out() -> None:
    events: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].split(".")[1]
                events.append(kind)
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        await trio.sleep(10)  # a request still running when the grace ends

    server = AsyncServer(ASGIAdapter(app), port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with AsyncClient() as client:
            nursery.start_soon(_swallow, client.get(server.url + "/"))
            await trio.sleep(0.2)
            with trio.fail_after(5):
                await server.shutdown(grace=0.2)
    assert events == ["startup", "shutdown"]


async def _swallow(request: Any) -> None:
    try:
        await request
    except hyperpy.HTTPError:
        pass  # the server cut the request when its grace ran out


async def test_an_app_stuck_in_its_shutdown_is_stopped_at_lifespan_timeout() -> None:
    stopped: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        try:
            await trio.sleep_forever()  # never completes its shutdown
        finally:
            stopped.append("cancelled")

    server = AsyncServer(ASGIAdapter(app), port=0)
    server.lifespan_timeout = 0.3  # the server's bound applies, not one of the adapter's
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        started = trio.current_time()
        with trio.fail_after(5):
            await server.shutdown(grace=0.1)
    assert stopped == ["cancelled"]
    assert 0.25 <= trio.current_time() - started < 3.0  # at lifespan_timeout, not sooner
