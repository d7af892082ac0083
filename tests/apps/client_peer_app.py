"""A plain ASGI app for hypercorn and uvicorn, served to hyperpy's clients
(tests/interop/test_client_asgi_servers.py).

- ``GET /info``: the request as the server saw it (JSON).
- ``POST /echo``: the request body back, with its length and sha256 in headers.
- ``GET /stream?n=N&size=S&delay=D``: N pieces of S bytes each (piece i is the byte
  ``i % 256`` repeated), D seconds apart, with no content-length.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

import anyio

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/info":
        info = {
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "method": scope["method"],
            "query": scope["query_string"].decode("latin-1"),
        }
        await _reply(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/echo":
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        headers = [
            (b"x-length", str(len(body)).encode()),
            (b"x-sha256", hashlib.sha256(body).hexdigest().encode()),
        ]
        await _reply(send, 200, bytes(body), b"application/octet-stream", headers)
    elif path == "/stream":
        query = parse_qs(scope["query_string"].decode("latin-1"))
        count = int(query.get("n", ["4"])[0])
        size = int(query.get("size", ["16"])[0])
        delay = float(query.get("delay", ["0"])[0])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        for index in range(count):
            if index and delay:
                await anyio.sleep(delay)
            piece = bytes([index % 256]) * size
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await _reply(send, 404, b"not found", b"text/plain")


async def _reply(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    fields = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": fields + (headers or [])}
    )
    await send({"type": "http.response.body", "body": body})
