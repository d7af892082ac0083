"""A hyperpy server in its own process, for the security probes.

    python tests/security/serve.py --world trio|threads [--limits JSON] [--h2-settings JSON]

It serves hyperpy's demo app (``/``, ``/echo``, ``/bytes/N``, ``/status/N``) for
the chosen world, plus routes the attacks need:

* ``/slow?s=SECONDS``: sleeps, then answers ``slept``; counted in ``/stats``;
* ``/upload?delay=SECONDS``: reads the request body one chunk at a time, sleeping
  ``delay`` (default 0.1 s) after each chunk, then answers the byte count;
* ``/path``: JSON with the method, path, query, target, URL host and port, and
  the ``Host`` header as the handler saw them;
* ``/boom``: the handler raises ``RuntimeError`` (a genuine handler error);
* ``/stats``: JSON counters of the ``/slow`` handlers: ``started``, ``running``,
  ``completed`` (slept in full), ``interrupted`` (ended early: cancelled or
  failed) and ``max_running``.

It listens on 127.0.0.1, port 0, with ``hyperpy.ServerLimits(**limits)`` and
``hyperpy.H2Settings(**h2_settings)``, prints exactly one line
``URL http://127.0.0.1:PORT`` (flushed) once listening, and serves until
SIGTERM or SIGINT, then shuts down gracefully (``shutdown(grace=1)``) and exits 0.
A bad ``--limits``/``--h2-settings`` (say a knob that does not exist yet) prints
``error: ...`` on stderr and exits 2. Log records of the ``hyperpy`` loggers at
WARNING and above go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import trio

import hyperpy
from hyperpy._async import demo as async_demo
from hyperpy._sync import demo as sync_demo

GRACE = 1.0


class SlowStats:
    """Counters of the ``/slow`` handlers (thread-safe: the threads world needs it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.running = 0
        self.completed = 0
        self.interrupted = 0
        self.max_running = 0

    def begin(self) -> None:
        with self._lock:
            self.started += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def end(self, completed: bool) -> None:
        with self._lock:
            self.running -= 1
            if completed:
                self.completed += 1
            else:
                self.interrupted += 1

    def as_json(self) -> dict[str, int]:
        with self._lock:
            return {
                "started": self.started,
                "running": self.running,
                "completed": self.completed,
                "interrupted": self.interrupted,
                "max_running": self.max_running,
            }


STATS = SlowStats()


def _param(request: hyperpy.Request, name: str, default: float) -> float:
    values = parse_qs(request.query).get(name)
    return float(values[0]) if values else default


def _path_info(request: hyperpy.Request) -> hyperpy.Response:
    return hyperpy.Response(
        200,
        json={
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "target": request.target,
            "host": request.url.host,
            "port": request.url.port,
            "host_header": request.headers.get("host"),
        },
    )


async def trio_app(request: hyperpy.Request) -> hyperpy.Response:
    path = request.path
    if path == "/slow":
        seconds = _param(request, "s", 1.0)
        STATS.begin()
        completed = False
        try:
            await trio.sleep(seconds)
            completed = True
        finally:
            STATS.end(completed)
        return hyperpy.Response(200, text="slept")
    if path == "/upload":
        delay = _param(request, "delay", 0.1)
        total = 0
        async for chunk in request.aiter_bytes():
            total += len(chunk)
            await trio.sleep(delay)
        return hyperpy.Response(200, text=str(total))
    if path == "/path":
        return _path_info(request)
    if path == "/boom":
        raise RuntimeError("boom: a genuine handler error")
    if path == "/stats":
        return hyperpy.Response(200, json=STATS.as_json())
    return await async_demo.app(request)


def threads_app(request: hyperpy.Request) -> hyperpy.Response:
    path = request.path
    if path == "/slow":
        seconds = _param(request, "s", 1.0)
        STATS.begin()
        completed = False
        try:
            time.sleep(seconds)
            completed = True
        finally:
            STATS.end(completed)
        return hyperpy.Response(200, text="slept")
    if path == "/upload":
        delay = _param(request, "delay", 0.1)
        total = 0
        for chunk in request.iter_bytes():
            total += len(chunk)
            time.sleep(delay)
        return hyperpy.Response(200, text=str(total))
    if path == "/path":
        return _path_info(request)
    if path == "/boom":
        raise RuntimeError("boom: a genuine handler error")
    if path == "/stats":
        return hyperpy.Response(200, json=STATS.as_json())
    return sync_demo.app(request)


def _announce(url: str) -> None:
    print(f"URL {url}", flush=True)


async def serve_trio(limits: hyperpy.ServerLimits, h2_settings: hyperpy.H2Settings) -> None:
    server = hyperpy.AsyncServer(
        trio_app, host="127.0.0.1", port=0, limits=limits, h2_settings=h2_settings
    )
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            _announce(server.url)
            await signals.__anext__()
            await server.shutdown(GRACE)
            nursery.cancel_scope.cancel()


def serve_threads(limits: hyperpy.ServerLimits, h2_settings: hyperpy.H2Settings) -> None:
    server = hyperpy.Server(
        threads_app, host="127.0.0.1", port=0, limits=limits, h2_settings=h2_settings
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    _announce(server.url)
    while not stop.wait(0.2):
        pass
    server.stop(grace=GRACE)


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _build(kind: Callable[..., Any], options: dict[str, Any]) -> Any:
    try:
        return kind(**options)
    except TypeError as exc:  # a knob that does not exist (yet)
        print(f"error: {kind.__name__}({options}): {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=("trio", "threads"), required=True)
    parser.add_argument("--limits", type=_json_object, default={})
    parser.add_argument("--h2-settings", type=_json_object, default={})
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    limits = _build(hyperpy.ServerLimits, args.limits)
    h2_settings = _build(hyperpy.H2Settings, args.h2_settings)
    if args.world == "trio":
        trio.run(serve_trio, limits, h2_settings)
    else:
        serve_threads(limits, h2_settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
