"""A Starlette (ASGI) app with a lifespan and a WebSocket echo."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .slow import started

state = {"lifespan": "not started"}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    state["lifespan"] = "started"
    yield
    state["lifespan"] = "stopped"


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()
            await anyio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def lifespan_state(request: Request) -> Response:
    return PlainTextResponse(state["lifespan"])


async def pid(request: Request) -> Response:
    return PlainTextResponse(str(os.getpid()))


async def slow(request: Request) -> Response:
    started()
    await anyio.sleep(float(request.query_params.get("delay", "1")))
    return PlainTextResponse("done")


async def client(request: Request) -> Response:
    host = request.client.host if request.client else "-"
    return PlainTextResponse(f"{host} {request.url.scheme}")


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/lifespan", lifespan_state),
        Route("/pid", pid),
        Route("/slow", slow),
        Route("/client", client),
        WebSocketRoute("/ws", ws_echo),
    ],
    lifespan=lifespan,
)
