# GENERATED from src/hyperpy/_async/demo.py by scripts/unasync.py: do not edit.
"""The built-in demo app, used by the CLI, the tests, the docs and the benchmarks.

``/`` says hello, ``/echo`` returns the request body, ``/bytes/{n}`` streams n
bytes in 64 KiB chunks, ``/status/{code}`` answers with that status.
"""

from __future__ import annotations

from collections.abc import Iterator

from .._models import Request, Response

_CHUNK = 64 * 1024
_BLOCK = b"x" * _CHUNK


def app(request: Request) -> Response:
    """Route ``request`` to one of the demo endpoints."""
    path = request.path
    if path == "/":
        return Response(200, text="Hello, world!")
    if path == "/echo":
        body = request.read()
        ctype = request.headers.get("content-type", "application/octet-stream")
        return Response(
            200, content=body, headers={"content-type": ctype}, trailers=request.trailers
        )
    if path.startswith("/bytes/"):
        try:
            size = int(path[len("/bytes/") :])
        except ValueError:
            return Response(400, text="size must be an integer\n")
        return Response(
            200,
            headers={"content-type": "application/octet-stream", "content-length": str(size)},
            content=_chunks(size),
        )
    if path.startswith("/status/"):
        try:
            return Response(int(path[len("/status/") :]))
        except ValueError:
            return Response(400, text="status must be an integer\n")
    return Response(404, text="Not Found\n")


def _chunks(size: int) -> Iterator[bytes]:
    while size > 0:
        n = min(size, _CHUNK)
        yield _BLOCK if n == _CHUNK else _BLOCK[:n]
        size -= n
