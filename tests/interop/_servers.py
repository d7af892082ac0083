"""hyperpy servers for interop tests whose peer is a client, in both worlds.

One set of routes, four ways to serve it: a native handler on the blocking
``Server`` and on the trio ``AsyncServer``, a Flask app behind ``WSGIAdapter`` on
``Server`` and a Starlette app behind ``ASGIAdapter`` on ``AsyncServer``. The
routes answer the same bytes whichever way they are served, so a client test can
run unchanged against all four:

- ``GET /query``: JSON ``{"method", "pairs"}``, the decoded query string (repeats kept).
- ``POST /echo``: the request body back; ``x-request-te`` and ``x-request-length``
  tell what Transfer-Encoding and Content-Length the request came with.
- ``GET /download?size=N``: the first N bytes of ``BLOB``, streamed by a generator
  in ``CHUNK`` pieces, without a Content-Length (so chunked over HTTP/1.1).
- ``GET /headers``: ``HEADERS_BODY`` with a custom header and two Set-Cookie fields.
- ``GET /peer``: JSON ``{"peer": "host:port", "version"}``: the client's address as
  the server saw it, and the HTTP version ("1.1" or "2").
- ``GET /gate``: as ``/peer``, once ``parties`` requests wait in it at the same time
  (503 if they do not within ``WAIT`` seconds): proof of concurrent requests.
- anything else: 404.

``serve_sync`` and ``serve_async`` start one of them on a loopback port.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal
from urllib.parse import parse_qsl

import flask
import trio
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, StreamingResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from hyperpy import AsyncServer, Request, Response, Server
from hyperpy.asgi import ASGIAdapter
from hyperpy.wsgi import WSGIAdapter

Flavour = Literal["native", "adapter"]

WAIT = 10.0  # the bound on every wait inside a handler
CHUNK = 64 * 1024
BLOB = os.urandom(4 * 1024 * 1024)  # what /download serves (random: no accidental match)
HEADERS_BODY = b"custom headers and cookies\n"
CUSTOM = ("x-interop", "hyperpy custom value")
SET_COOKIES = ("a=1; Path=/", "b=2; Path=/; HttpOnly")
GATE_PARTIES = 6


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _size(value: str | None) -> int:
    return min(int(value or "0"), len(BLOB))


def _blob_chunks(size: int) -> Iterator[bytes]:
    for start in range(0, size, CHUNK):
        yield BLOB[start : min(start + CHUNK, size)]


def _peer(client: Any, version: str) -> dict[str, str]:
    host, port = client[0], client[1]
    return {"peer": f"{host}:{port}", "version": version}


def _echo_headers(transfer_encoding: str | None, length: str | None) -> dict[str, str]:
    return {
        "content-type": "application/octet-stream",
        "x-request-te": transfer_encoding or "",
        "x-request-length": length or "",
    }


def _custom_headers() -> list[tuple[str, str]]:
    return [("content-type", "text/plain"), CUSTOM] + [("set-cookie", c) for c in SET_COOKIES]


# -- native handlers ------------------------------------------------------------------


def sync_app(parties: int = GATE_PARTIES) -> Any:
    """A native handler for the blocking ``Server``."""
    # Handlers run in worker threads, so a thread barrier sees concurrent requests.
    barrier = threading.Barrier(parties, timeout=WAIT)

    def app(request: Request) -> Response:
        path = request.path
        if path == "/query":
            pairs = parse_qsl(request.query, keep_blank_values=True)
            return Response(json={"method": request.method, "pairs": pairs})
        if path == "/echo" and request.method == "POST":
            body = request.read()
            te, length = (request.headers.get(n) for n in ("transfer-encoding", "content-length"))
            return Response(content=body, headers=_echo_headers(te, length))
        if path == "/download":
            size = _size(dict(parse_qsl(request.query)).get("size"))
            return Response(content=_blob_chunks(size))
        if path == "/headers":
            return Response(content=HEADERS_BODY, headers=_custom_headers())
        if path == "/peer":
            return Response(json=_peer(request.client, request.http_version))
        if path == "/gate":
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return Response(503, text="the other requests did not come\n")
            return Response(json=_peer(request.client, request.http_version))
        return Response(404, text="Not Found\n")

    return app


class TrioGate:
    """Lets requests through once ``parties`` of them wait at the same time."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.full = trio.Event()

    async def wait(self) -> bool:
        """True once all parties came; False if they did not within ``WAIT``."""
        self.arrived += 1
        if self.arrived >= self.parties:
            self.full.set()
        with trio.move_on_after(WAIT):
            await self.full.wait()
            return True
        return False


def async_app(parties: int = GATE_PARTIES) -> Any:
    """A native handler for the trio ``AsyncServer``."""
    gate = TrioGate(parties)

    async def chunks(size: int) -> AsyncIterator[bytes]:
        for chunk in _blob_chunks(size):
            yield chunk

    async def app(request: Request) -> Response:
        path = request.path
        if path == "/query":
            pairs = parse_qsl(request.query, keep_blank_values=True)
            return Response(json={"method": request.method, "pairs": pairs})
        if path == "/echo" and request.method == "POST":
            body = await request.aread()
            te, length = (request.headers.get(n) for n in ("transfer-encoding", "content-length"))
            return Response(content=body, headers=_echo_headers(te, length))
        if path == "/download":
            size = _size(dict(parse_qsl(request.query)).get("size"))
            return Response(content=chunks(size))
        if path == "/headers":
            return Response(content=HEADERS_BODY, headers=_custom_headers())
        if path == "/peer":
            return Response(json=_peer(request.client, request.http_version))
        if path == "/gate":
            if not await gate.wait():
                return Response(503, text="the other requests did not come\n")
            return Response(json=_peer(request.client, request.http_version))
        return Response(404, text="Not Found\n")

    return app


# -- framework apps -------------------------------------------------------------------


def flask_app(parties: int = GATE_PARTIES) -> flask.Flask:
    """The routes as a Flask (WSGI) app."""
    app = flask.Flask(__name__)
    barrier = threading.Barrier(parties, timeout=WAIT)
    request = flask.request

    def peer() -> dict[str, str]:
        env = request.environ
        version = env["SERVER_PROTOCOL"].removeprefix("HTTP/")
        return _peer((env["REMOTE_ADDR"], env["REMOTE_PORT"]), version)

    @app.get("/query")
    def query() -> Any:
        return {"method": request.method, "pairs": list(request.args.items(multi=True))}

    @app.post("/echo")
    def echo() -> flask.Response:
        headers = _echo_headers(
            request.headers.get("transfer-encoding"), request.headers.get("content-length")
        )
        return flask.Response(request.get_data(), headers=headers)

    @app.get("/download")
    def download() -> flask.Response:
        size = _size(request.args.get("size"))
        return flask.Response(_blob_chunks(size), mimetype="application/octet-stream")

    @app.get("/headers")
    def headers() -> flask.Response:
        return flask.Response(HEADERS_BODY, headers=_custom_headers())

    @app.get("/peer")
    def peer_route() -> Any:
        return peer()

    @app.get("/gate")
    def gate() -> Any:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return "the other requests did not come\n", 503
        return peer()

    return app


def starlette_app(parties: int = GATE_PARTIES) -> Starlette:
    """The routes as a Starlette (ASGI) app (served on trio, so trio primitives work)."""
    gate = TrioGate(parties)

    def peer(request: StarletteRequest) -> JSONResponse:
        assert request.client is not None
        return JSONResponse(_peer(request.client, request.scope["http_version"]))

    async def query(request: StarletteRequest) -> StarletteResponse:
        pairs = request.query_params.multi_items()
        return JSONResponse({"method": request.method, "pairs": pairs})

    async def echo(request: StarletteRequest) -> StarletteResponse:
        headers = _echo_headers(
            request.headers.get("transfer-encoding"), request.headers.get("content-length")
        )
        return StarletteResponse(await request.body(), headers=headers)

    async def download(request: StarletteRequest) -> StarletteResponse:
        size = _size(request.query_params.get("size"))

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in _blob_chunks(size):
                yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def headers(request: StarletteRequest) -> StarletteResponse:
        response = StarletteResponse(HEADERS_BODY, media_type="text/plain")
        response.headers.append(*CUSTOM)
        for cookie in SET_COOKIES:
            response.headers.append("set-cookie", cookie)
        return response

    async def peer_route(request: StarletteRequest) -> StarletteResponse:
        return peer(request)

    async def gate_route(request: StarletteRequest) -> StarletteResponse:
        if not await gate.wait():
            return StarletteResponse("the other requests did not come\n", status_code=503)
        return peer(request)

    return Starlette(
        routes=[
            Route("/query", query),
            Route("/echo", echo, methods=["POST"]),
            Route("/download", download),
            Route("/headers", headers),
            Route("/peer", peer_route),
            Route("/gate", gate_route),
        ]
    )


# -- servers --------------------------------------------------------------------------


@contextmanager
def serve_sync(flavour: Flavour, ssl_context: ssl.SSLContext | None = None) -> Iterator[Server]:
    """The routes on a loopback blocking ``Server``: native, or Flask via ``WSGIAdapter``."""
    app = sync_app() if flavour == "native" else WSGIAdapter(flask_app())
    with Server(app, port=0, ssl=ssl_context) as server:
        yield server


@asynccontextmanager
async def serve_async(
    flavour: Flavour, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[AsyncServer]:
    """The routes on a loopback trio ``AsyncServer``: native, or Starlette via ``ASGIAdapter``."""
    app = async_app() if flavour == "native" else ASGIAdapter(starlette_app())
    async with AsyncServer(app, port=0, ssl=ssl_context) as server:
        yield server
