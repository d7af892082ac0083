"""curl against apps behind hyperpy's adapters: a Flask app through ``WSGIAdapter`` on
the blocking ``Server``, a Starlette app through ``ASGIAdapter`` on the trio
``AsyncServer``.

The scenarios, protocols and checks are test_curl.py's; only the handlers differ.
Each app serves the same routes as the native handlers there, written the way an
app would: the upload hashed as the framework streams it, downloads as generators,
and compression by the app (by hand in Flask, by Starlette's ``GZipMiddleware``).
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import trustme
from flask import Flask
from flask import Response as FlaskResponse
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from test_curl import (  # the scenarios
    BLOCK_SIZE,
    CASES,
    GZIP_TEXT,
    HELLO,
    TEXT,
    Case,
    Env,
    Protocol,
    accepts_gzip,
    blocks,
    digest_line,
    make_env,
    params,
    run_async,
    run_sync,
)

from hyperpy import AsyncServer, Server
from hyperpy.asgi import ASGIAdapter
from hyperpy.wsgi import WSGIAdapter

# -- Flask (WSGI) ---------------------------------------------------------------------------

flask_app = Flask(__name__)


@flask_app.get("/")
def flask_hello() -> FlaskResponse:
    return FlaskResponse(HELLO, mimetype="text/plain")


@flask_app.route("/sha256", methods=["POST", "PUT"])
def flask_sha256() -> FlaskResponse:
    digest, size = hashlib.sha256(), 0
    stream = flask_request.stream  # the raw body, chunked or not, as it arrives
    while chunk := stream.read(BLOCK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return FlaskResponse(digest_line(size, digest.hexdigest()), mimetype="text/plain")


@flask_app.get("/download/<int:size>")
def flask_download(size: int) -> FlaskResponse:
    headers = {"Content-Length": str(size)}
    return FlaskResponse(blocks(size), headers=headers, mimetype="application/octet-stream")


@flask_app.get("/stream/<int:size>")
def flask_stream(size: int) -> FlaskResponse:
    return FlaskResponse(blocks(size), mimetype="application/octet-stream")


@flask_app.get("/gzip")
def flask_gzip() -> FlaskResponse:
    if accepts_gzip(flask_request.headers.get("Accept-Encoding", "")):
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return FlaskResponse(GZIP_TEXT, headers=headers, mimetype="text/plain")
    return FlaskResponse(TEXT, headers={"Vary": "Accept-Encoding"}, mimetype="text/plain")


@flask_app.post("/refuse")
def flask_refuse() -> FlaskResponse:
    return FlaskResponse("refused unread\n", status=413, mimetype="text/plain")


# -- Starlette (ASGI) -----------------------------------------------------------------------


async def _generated(size: int) -> AsyncIterator[bytes]:
    for data in blocks(size):
        yield data
        await anyio.sleep(0)


async def starlette_hello(request: Request) -> Response:
    return PlainTextResponse(HELLO)


async def starlette_sha256(request: Request) -> Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return PlainTextResponse(digest_line(size, digest.hexdigest()))


async def starlette_download(request: Request) -> Response:
    size = request.path_params["size"]
    headers = {"content-length": str(size)}
    return StreamingResponse(_generated(size), headers=headers, media_type="application/x-bin")


async def starlette_stream(request: Request) -> Response:
    return StreamingResponse(
        _generated(request.path_params["size"]), media_type="application/x-bin"
    )


async def starlette_text(request: Request) -> Response:
    return PlainTextResponse(TEXT)  # GZipMiddleware compresses it when asked to


async def starlette_refuse(request: Request) -> Response:
    return PlainTextResponse("refused unread\n", status_code=413)


starlette_app = Starlette(
    routes=[
        Route("/", starlette_hello),
        Route("/sha256", starlette_sha256, methods=["POST", "PUT"]),
        Route("/download/{size:int}", starlette_download),
        Route("/stream/{size:int}", starlette_stream),
        Route("/gzip", starlette_text),
        Route("/refuse", starlette_refuse, methods=["POST"]),
    ],
    middleware=[Middleware(GZipMiddleware, minimum_size=500)],
)


# -- the servers, and the scenarios against them ------------------------------------------


@pytest.fixture
def env(ca: trustme.CA, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Env:
    return make_env(ca, tmp_path, tmp_path_factory)


def wsgi_server(context: ssl.SSLContext | None) -> Server:
    return Server(WSGIAdapter(flask_app), port=0, ssl=context)


@pytest.mark.parametrize(("protocol", "case"), params("sync", CASES))
def test_wsgi_flask(
    protocol: Protocol, case: Case, env: Env, server_ssl_context: ssl.SSLContext
) -> None:
    run_sync(wsgi_server, case, protocol, env, server_ssl_context)


def asgi_server(context: ssl.SSLContext | None) -> AsyncServer:
    return AsyncServer(ASGIAdapter(starlette_app), port=0, ssl=context)


@pytest.mark.parametrize(("protocol", "case"), params("async", CASES))
async def test_asgi_starlette(
    protocol: Protocol, case: Case, env: Env, server_ssl_context: ssl.SSLContext
) -> None:
    await run_async(asgi_server, case, protocol, env, server_ssl_context)
