"""The same small app twice, for the reverse-proxy tests: ``wsgi`` (Flask) and ``asgi``
(Starlette), served with ``hyperpy serve tests.apps.deploy_app:wsgi`` (or ``:asgi``).

* ``GET /healthz``: ``ok``, for a balancer's health check.
* ``GET /whoami``: JSON with the request as the app sees it after ``--proxy-headers``
  (client address, scheme, Host, full URL, root path, HTTP version).
* ``POST /echo``: the body back.
* ``GET /events/ticks?n=N&delay=S``: N lines, S seconds apart (a streamed response).
* ``GET /slow?delay=S``: ``done`` after S seconds; says on stderr when it starts, so
  that a test can signal the server while the request is in flight.
* ``/ws`` (ASGI only): a WebSocket echo.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from flask import Flask, jsonify
from flask import Response as FlaskResponse
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

SLOW_STARTED = "deploy_app: slow request started"


def _announce_slow() -> None:
    # stderr, not stdout: stdout carries the access log, written only once answered.
    print(SLOW_STARTED, file=sys.stderr, flush=True)


# -- WSGI (Flask) -------------------------------------------------------------------------

wsgi = Flask(__name__)


@wsgi.get("/healthz")
def wsgi_healthz() -> str:
    return "ok"


@wsgi.get("/whoami")
def wsgi_whoami() -> Any:
    environ = flask_request.environ
    return jsonify(
        client=flask_request.remote_addr,
        scheme=flask_request.scheme,
        host=flask_request.host,
        url=flask_request.url,
        root_path=flask_request.script_root,
        http_version=environ["SERVER_PROTOCOL"].removeprefix("HTTP/"),
    )


@wsgi.post("/echo")
def wsgi_echo() -> FlaskResponse:
    return FlaskResponse(flask_request.get_data(), mimetype="application/octet-stream")


@wsgi.get("/events/ticks")
def wsgi_ticks() -> FlaskResponse:
    count = int(flask_request.args.get("n", "3"))
    delay = float(flask_request.args.get("delay", "0.2"))

    def lines() -> Iterator[bytes]:
        for i in range(count):
            if i:
                time.sleep(delay)
            yield f"tick {i}\n".encode()

    return FlaskResponse(lines(), mimetype="text/plain")


@wsgi.get("/slow")
def wsgi_slow() -> str:
    _announce_slow()
    time.sleep(float(flask_request.args.get("delay", "1")))
    return "done"


# -- ASGI (Starlette) ---------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def whoami(request: Request) -> Response:
    client = request.client.host if request.client else None
    return JSONResponse(
        {
            "client": client,
            "scheme": request.url.scheme,
            "host": request.headers.get("host"),
            "url": str(request.url),
            "root_path": request.scope.get("root_path", ""),
            "http_version": request.scope["http_version"],
        }
    )


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def ticks(request: Request) -> Response:
    count = int(request.query_params.get("n", "3"))
    delay = float(request.query_params.get("delay", "0.2"))

    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            if i:
                await anyio.sleep(delay)
            yield f"tick {i}\n".encode()

    return StreamingResponse(lines(), media_type="text/plain")


async def slow(request: Request) -> Response:
    _announce_slow()
    await anyio.sleep(float(request.query_params.get("delay", "1")))
    return PlainTextResponse("done")


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


asgi = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/whoami", whoami),
        Route("/echo", echo, methods=["POST"]),
        Route("/events/ticks", ticks),
        Route("/slow", slow),
        WebSocketRoute("/ws", ws_echo),
    ]
)
