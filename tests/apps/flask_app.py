"""A Flask (WSGI) app: hello, an echo, a streamed response, the worker's pid, a slow route."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Flask, Response, request

from .slow import started

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello from flask"


@app.post("/echo")
def echo() -> Response:
    return Response(request.get_data(), mimetype="application/octet-stream")


@app.get("/stream")
def stream() -> Response:
    def chunks() -> Iterator[bytes]:
        for i in range(5):
            yield f"chunk {i}\n".encode()

    return Response(chunks(), mimetype="text/plain")


@app.get("/pid")
def pid() -> str:
    return str(os.getpid())


@app.get("/slow")
def slow() -> str:
    started()
    time.sleep(float(request.args.get("delay", "1")))
    return "done"


@app.get("/client")
def client() -> str:
    return f"{request.remote_addr} {request.scheme}"
