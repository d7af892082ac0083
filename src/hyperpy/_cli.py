"""The command line: ``python -m hyperpy serve`` and ``python -m hyperpy get``.

``serve [module:app]`` runs an app (the built-in demo by default) on the trio
server, or with ``--sync`` on the blocking server whose handlers run in threads.
SIGINT or SIGTERM shuts it down gracefully (5 s for requests in flight); a second
one stops at once.

``get URL`` prints a response body to stdout (``-i``: status line and headers
first). Exit status: 0 for a status below 400, 1 for 4xx/5xx, 2 when the request
failed (``error: ...`` on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from types import FrameType
from typing import Any

import trio

from ._async.server import AsyncServer
from ._config import Timeout
from ._exceptions import HTTPError
from ._sync.client import Client
from ._sync.server import Server

DEMO_APP = {"trio": "hyperpy._async.demo:app", "threads": "hyperpy._sync.demo:app"}
SHUTDOWN_GRACE = 5.0


class UsageError(Exception):
    """A bad command line argument, reported as ``error: ...`` with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "get":
            return _get(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser.print_help(sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="hyperpy", description="HTTP/1.1 and HTTP/2 client and server."
    )
    parser.add_argument("--version", action="version", version=f"hyperpy {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="serve an app (the built-in demo by default)",
        description="Serve APP (module:attribute); without it, the built-in demo app "
        "('/', '/echo', '/bytes/N', '/status/N'). Ctrl-C or SIGTERM shuts down gracefully.",
    )
    serve.add_argument(
        "app",
        nargs="?",
        metavar="APP",
        help="module:attribute of the handler (async def for trio, def with --sync)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8000, help="port to bind, 0 for any (default: %(default)s)"
    )
    serve.add_argument(
        "--sync",
        action="store_true",
        help="use the blocking server (handlers run in threads) instead of the trio one",
    )
    serve.add_argument("--certfile", help="PEM certificate chain: serve HTTPS")
    serve.add_argument("--keyfile", help="PEM private key (if not in --certfile)")
    serve.add_argument(
        "--no-http2",
        dest="http2",
        action="store_false",
        help="speak HTTP/1.1 only (no h2 by ALPN, no h2c)",
    )

    get = commands.add_parser(
        "get",
        help="GET a URL and print the response body",
        description="GET URL with the blocking client and write the body to stdout. "
        "Exit status: 0 below 400, 1 for 4xx/5xx, 2 if the request failed.",
    )
    get.add_argument("url", metavar="URL")
    get.add_argument(
        "--http2", action="store_true", help="offer HTTP/2 by ALPN (https:// URLs only)"
    )
    get.add_argument(
        "--http2-prior-knowledge",
        action="store_true",
        help="speak HTTP/2 straight away (h2c on http:// URLs)",
    )
    get.add_argument(
        "--insecure", "-k", action="store_true", help="do not verify the server's certificate"
    )
    get.add_argument(
        "--include", "-i", action="store_true", help="print the status line and headers first"
    )
    get.add_argument(
        "--timeout",
        type=_timeout,
        default=Timeout(5.0),
        metavar="S",
        help="limit for each step (connect, each read, each write) in seconds "
        "(default: %(default)s)",
    )
    return parser


def _timeout(text: str) -> Timeout:
    """``--timeout``: seconds for each step, checked as ``Timeout`` checks them."""
    try:
        return Timeout(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- serve ----------------------------------------------------------------------------


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (attribute may be dotted); the cwd is importable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"APP must look like module:attribute, not {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{spec!r} is not callable")
    return obj


def _is_async(app: Any) -> bool:
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _serve(args: argparse.Namespace) -> int:
    flavour = "threads" if args.sync else "trio"
    app = load_app(args.app or DEMO_APP[flavour])
    if args.sync and _is_async(app):
        raise UsageError("--sync needs a plain `def app(request)` handler, not an async one")
    if not args.sync and not _is_async(app):
        raise UsageError("the trio server needs `async def app(request)`; use --sync for def")
    if args.keyfile and not args.certfile:
        raise UsageError("--keyfile needs --certfile")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "certfile": args.certfile,
        "keyfile": args.keyfile,
        "http2": args.http2,
    }
    try:
        server = Server(app, **options) if args.sync else AsyncServer(app, **options)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise UsageError(f"cannot load the certificate or key: {exc}") from exc
    try:
        if isinstance(server, Server):
            failure = _serve_threads(server)
        else:
            failure = trio.run(_serve_trio, server)
    except KeyboardInterrupt:
        return 130  # a second Ctrl-C while shutting down
    if failure is not None:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {failure}")
    return 0


def _announce(url: str, flavour: str) -> None:
    print(f"hyperpy serving on {url} ({flavour})", flush=True)


async def _serve_trio(server: AsyncServer) -> OSError | None:
    """Serve until a signal; return the error if the server could not listen."""
    served = trio.Event()

    async def run_server(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await server.serve(task_status=task_status)
        finally:
            served.set()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(run_server)
            except OSError as exc:
                return exc
            _announce(server.url, "trio")
            await signals.__anext__()
            # A second signal stops at once instead of waiting for requests in flight.
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope)
            await server.shutdown(SHUTDOWN_GRACE)
            await served.wait()
            nursery.cancel_scope.cancel()  # only the signal watcher is left
    return None


async def _cancel_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    await signals.__anext__()
    scope.cancel()


def _serve_threads(server: Server) -> OSError | None:
    """Serve until a signal; return the error if the server could not listen."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            return exc
        _announce(server.url, "threads")
        while not stop.wait(1.0):
            pass
        # A second signal interrupts the shutdown (KeyboardInterrupt / default action).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.stop(grace=SHUTDOWN_GRACE)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return None


# -- get ------------------------------------------------------------------------------


def _get(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    try:
        with (
            Client(
                timeout=args.timeout,
                verify=not args.insecure,
                http2=args.http2,
                http2_prior_knowledge=args.http2_prior_knowledge,
            ) as client,
            client.stream("GET", args.url) as response,
        ):
            if args.include:
                status_line = f"HTTP/{response.http_version} {response.status}"
                if response.http_version != "2" and response.reason:  # HTTP/2 has no reason
                    status_line += f" {response.reason}"
                head = [status_line]
                head += [f"{name}: {value}" for name, value in response.headers.multi_items()]
                out.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            for chunk in response.iter_bytes():
                out.write(chunk)
            out.flush()
            status = response.status
    except HTTPError as exc:
        out.flush()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``| head``): not our failure. Silence the final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0 if status < 400 else 1
