"""Serving in this process: one server until SIGTERM or SIGINT, as a worker or alone.

The first signal shuts down gracefully (requests in flight get
``--graceful-timeout`` seconds); a second one stops at once. A worker (started
by the supervisor with ``--supervised``) ignores SIGINT, which a terminal sends
to the whole process group: only the supervisor's SIGTERM, or the supervisor
going away, stops it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

import trio

from .._async.server import AsyncServer
from .._sync.server import Server
from . import logs
from .errors import UsageError
from .handler import build_handler
from .interface import DEMO_APP, Interface, detect, load_app
from .listening import remove_socket_file, where
from .serve_args import ServeConfig
from .signals import SignalWaiter

# uvicorn's and gunicorn's status for an app that could not start.
STARTUP_FAILED = 3


class StartupFailed(Exception):
    """The server could not start: it could not listen, or the app's startup failed."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def serve_here(config: ServeConfig) -> int:
    """Serve ``config``'s app in this process; return the exit status."""
    logs.configure(
        level=config.log_level, access_log=config.access_log, config_file=config.log_config
    )
    worker = config.supervised is not None
    spec = config.app or DEMO_APP["threads" if config.sync else "trio"]
    app = load_app(spec, factory=config.factory and config.app is not None)
    interface = detect(app, spec, config.interface, sync=config.sync)
    label = f"worker {os.getpid()}: " if worker else ""
    print(f"hyperpy: {label}{interface.describe()}", file=sys.stderr, flush=True)
    handler = build_handler(app, interface, config)
    server = _server(handler, interface, config)

    def announce() -> None:
        if worker:
            print(f"hyperpy: worker {os.getpid()} ready", file=sys.stderr, flush=True)
        else:
            flavour = "threads" if interface.threads else "trio"
            url = f"unix:{config.uds}" if config.uds else where(server.address, tls=config.tls)
            print(f"hyperpy serving on {url} ({flavour})", flush=True)

    # ``signals`` start a graceful drain; once draining, ``urgent`` ones stop at once.
    # A worker drains on SIGTERM however often it comes (systemd signals the whole
    # group, and the supervisor signals it too) and stops at once only on the
    # supervisor's SIGQUIT.
    signals: list[int] = [signal.SIGTERM]
    urgent: list[int] = [signal.SIGQUIT]
    if worker:
        assert config.supervised is not None
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # The supervisor started this process with SIGINT blocked (see supervisor.py).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        _stop_with_supervisor(config.supervised[1])
    else:
        signals.append(signal.SIGINT)
        urgent = signals
    grace = config.graceful_timeout

    def cleanup() -> None:
        if config.uds is not None and not worker:
            remove_socket_file(config.uds)

    try:
        if isinstance(server, Server):
            _serve_threads(server, grace, signals, urgent, announce, cleanup)
            status = 0
        else:
            status = trio.run(_serve_trio, server, grace, signals, urgent, announce)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT  # a second Ctrl-C while shutting down
    except StartupFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    finally:
        cleanup()
    return status


def _server(handler: Any, interface: Interface, config: ServeConfig) -> AsyncServer | Server:
    options: dict[str, Any] = {
        "certfile": config.certfile,
        "keyfile": config.keyfile,
        "http2": config.http2,
        "limits": config.limits,
        "backlog": config.backlog,
        "access_log": config.access_log,
    }
    if config.supervised is not None:
        options["fd"] = config.supervised[0]
    elif config.fd is not None:
        options["fd"] = config.fd
    elif config.uds is not None:
        options["uds"] = config.uds
    else:
        options["host"], options["port"] = config.host, config.port
    try:
        if interface.threads:
            return Server(handler, **options)
        return AsyncServer(handler, **options)
    except OSError as exc:  # ssl.SSLError is an OSError too
        raise UsageError(f"cannot load the certificate or key: {exc}") from exc


def _failure(server: AsyncServer | Server, error: BaseException) -> StartupFailed:
    if isinstance(error, OSError):
        if server.fd is not None:
            where = f"fd {server.fd}"
        else:
            where = server.uds if server.uds is not None else f"{server.host}:{server.port}"
        return StartupFailed(f"cannot listen on {where}: {error}", 2)
    return StartupFailed(f"the app failed to start: {error}", STARTUP_FAILED)


def _stop_with_supervisor(pipe_fd: int) -> None:
    """Shut down gracefully when the supervisor dies: its end of the pipe closes."""

    def watch() -> None:
        try:
            while os.read(pipe_fd, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hyperpy-supervisor-watch", daemon=True).start()


# -- the trio server ------------------------------------------------------------------


async def _serve_trio(
    server: AsyncServer,
    grace: float,
    signals: list[int],
    urgent: list[int],
    announce: Callable[[], None],
) -> int:
    """Serve until a signal; the exit status (128 + N if an urgent signal N cut the
    drain short). StartupFailed if the server never took a request."""
    outcome = await _serve_trio_until_signal(server, grace, signals, urgent, announce)
    if isinstance(outcome, StartupFailed):
        raise outcome  # out here, not wrapped in the nursery's exception group
    return outcome


async def _serve_trio_until_signal(
    server: AsyncServer,
    grace: float,
    signals: list[int],
    urgent: list[int],
    announce: Callable[[], None],
) -> StartupFailed | int:
    served = trio.Event()
    second: list[int] = []

    async def run_server(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await server.serve(task_status=task_status)
        finally:
            served.set()

    async def cancel_on_signal(received: AsyncIterator[int], scope: trio.CancelScope) -> None:
        async for sig in received:
            if sig in urgent:
                second.append(sig)
                scope.cancel()
                return

    with trio.open_signal_receiver(*dict.fromkeys([*signals, *urgent])) as received:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(run_server)
            except Exception as exc:
                return _failure(server, exc)
            announce()
            async for sig in received:
                if sig in signals:
                    break
            # An urgent signal now stops at once instead of waiting for requests in flight.
            nursery.start_soon(cancel_on_signal, received, nursery.cancel_scope)
            await server.shutdown(grace)
            await served.wait()
            nursery.cancel_scope.cancel()  # only the signal watcher is left
    return 128 + second[0] if second else 0


# -- the threaded server --------------------------------------------------------------


def _serve_threads(
    server: Server,
    grace: float,
    signals: list[int],
    urgent: list[int],
    announce: Callable[[], None],
    cleanup: Callable[[], None],
) -> None:
    """Serve until a signal; StartupFailed if the server never took a request."""

    def at_once(signum: int, frame: FrameType | None) -> None:
        # The second signal stops at once: handler threads cannot be interrupted, so
        # the process ends without waiting for them.
        cleanup()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + signum)

    # Installed first, so that they are what the waiter leaves in place: no gap in
    # which a signal would meet the interpreter's defaults.
    previous = {sig: signal.signal(sig, at_once) for sig in dict.fromkeys([*signals, *urgent])}
    for sig in signals:
        if sig not in urgent:
            signal.signal(sig, signal.SIG_IGN)  # once draining, it changes nothing
    try:
        with SignalWaiter(signals) as waiter:
            try:
                server.start()
            except Exception as exc:
                raise _failure(server, exc) from exc
            announce()
            while waiter.take() is None:
                waiter.wait(None)
        server.stop(grace=grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
