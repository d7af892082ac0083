"""Native hyperpy handlers: ``app`` for the trio server, ``sync_app`` for the threaded one.

``/slow?delay=S`` answers after S seconds (saying on stderr when it starts),
``/pid`` with the process id, ``/client`` with the peer address as the handler
sees it; anything else: hello.
"""

from __future__ import annotations

import os
import sys
import time

import trio

from hyperpy import Request, Response


def started() -> None:
    """Tell the tests (on stderr) that a slow request is in the handler."""
    print(f"slow request started in {os.getpid()}", file=sys.stderr, flush=True)


def _answer(request: Request) -> Response | None:
    if request.path == "/pid":
        return Response(200, text=str(os.getpid()))
    if request.path == "/client":
        host = request.client[0] if request.client else "-"
        return Response(200, text=f"{host} {request.url.scheme}")
    if request.path != "/slow":
        return Response(200, text="hello from hyperpy")
    return None


def _delay(request: Request) -> float:
    for part in request.url.query.split("&"):
        name, _, value = part.partition("=")
        if name == "delay":
            return float(value)
    return 1.0


async def app(request: Request) -> Response:
    answer = _answer(request)
    if answer is None:
        started()
        await trio.sleep(_delay(request))
        answer = Response(200, text="done")
    return answer


def sync_app(request: Request) -> Response:
    answer = _answer(request)
    if answer is None:
        started()
        time.sleep(_delay(request))
        answer = Response(200, text="done")
    return answer
