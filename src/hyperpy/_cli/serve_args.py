"""The ``serve`` command's options, and ``ServeConfig``: the same, checked and typed."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import typing
from dataclasses import dataclass
from typing import Any, Literal

from .._config import ServerLimits
from .errors import UsageError

Interface = Literal["auto", "asgi", "wsgi", "hyperpy"]
Lifespan = Literal["auto", "on", "off"]
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_GRACE = 30.0

# Help for each ServerLimits field; a field added later still gets a flag.
_LIMIT_HELP = {
    "max_head_bytes": "largest request head (request line and headers) in bytes",
    "max_header_count": "most header fields in a request head",
    "max_target_bytes": "longest request target (path and query) in bytes",
    "header_read_timeout": "seconds from a head's first byte to its end (slowloris)",
    "keep_alive_timeout": "seconds a connection may send nothing before it is closed",
    "body_read_timeout": "seconds a request body may make no progress",
    "write_timeout": "seconds a response write may make no progress",
    "tls_handshake_timeout": "seconds for the TLS handshake",
    "max_connections": "connections held at once; beyond it idle ones are shed first",
    "max_workers": "threads serving requests (threaded server only)",
}
# Names other servers use for the same thing.
_LIMIT_ALIASES = {"keep_alive_timeout": ["--timeout-keep-alive"]}


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``serve`` was asked to do, validated."""

    app: str | None
    factory: bool
    interface: Interface
    sync: bool
    host: str
    port: int
    uds: str | None
    fd: int | None
    backlog: int
    workers: int | None  # None: serve in this process, no supervisor
    reload: bool
    reload_dirs: tuple[str, ...]
    graceful_timeout: float
    certfile: str | None
    keyfile: str | None
    http2: bool
    limits: ServerLimits
    access_log: bool
    log_level: str | None  # None: not given (info, unless --log-config decides)
    log_config: str | None
    proxy_headers: bool
    forwarded_allow_ips: str
    root_path: str
    lifespan: Lifespan
    # In a worker process: (listening socket fd, supervisor pipe fd).
    supervised: tuple[int, int] | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None


def add_serve_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``commands`` (an argparse subparsers object)."""
    serve: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="serve an ASGI, WSGI or hyperpy app (the built-in demo by default)",
        description="Serve APP (module:attribute): an ASGI app on the trio server, a WSGI "
        "app or a plain `def app(request)` on the threaded server, an `async def "
        "app(request)` on the trio server. Without APP, the built-in demo ('/', '/echo', "
        "'/bytes/N', '/status/N'). SIGINT or SIGTERM shuts down gracefully. "
        "See docs/cli.md.",
    )
    serve.add_argument("app", nargs="?", metavar="APP", help="module:attribute of the app")

    group = serve.add_argument_group("app")
    group.add_argument(
        "--interface",
        choices=["auto", "asgi", "wsgi", "hyperpy"],
        default="auto",
        help="how to call APP (default: %(default)s, told by its signature)",
    )
    group.add_argument(
        "--factory", action="store_true", help="APP is a function returning the app: call it"
    )
    group.add_argument(
        "--sync",
        action="store_true",
        help="native handlers: the threaded server (the demo: its blocking twin)",
    )
    group.add_argument(
        "--root-path", default="", metavar="PATH", help="prefix the app is mounted at (ASGI/WSGI)"
    )
    group.add_argument(
        "--lifespan",
        choices=["auto", "on", "off"],
        default="auto",
        help="ASGI lifespan protocol: auto (if the app speaks it), on, off (default: auto)",
    )

    group = serve.add_argument_group("where to listen")
    group.add_argument("--host", help=f"address to bind (default: {DEFAULT_HOST})")
    group.add_argument(
        "--port", type=_port, help=f"port to bind, 0 for any free one (default: {DEFAULT_PORT})"
    )
    group.add_argument("--uds", metavar="PATH", help="listen on this Unix domain socket")
    group.add_argument(
        "--fd", type=_fd, metavar="N", help="serve on the listening socket inherited as fd N"
    )
    group.add_argument(
        "-b",
        "--bind",
        metavar="ADDRESS",
        help="HOST:PORT, unix:PATH or fd://N, instead of --host/--port/--uds/--fd",
    )
    group.add_argument(
        "--backlog",
        type=_count,
        default=1024,
        metavar="N",
        help="accept queue length (default: %(default)s)",
    )

    group = serve.add_argument_group("processes")
    group.add_argument(
        "-w",
        "--workers",
        type=_count,
        metavar="N",
        help="run N worker processes under a supervisor (default: $WEB_CONCURRENCY, "
        "else none: serve in this process)",
    )
    group.add_argument(
        "--graceful-timeout",
        "--timeout-graceful-shutdown",
        type=_seconds,
        default=DEFAULT_GRACE,
        metavar="S",
        help="on SIGTERM/SIGINT, seconds requests in flight get to finish (default: %(default)s)",
    )
    group.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when a .py file changes (needs watchfiles)",
    )
    group.add_argument(
        "--reload-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to watch with --reload (repeatable; default: the current one)",
    )
    # A worker started by the supervisor: "LISTEN_FD:PIPE_FD".
    group.add_argument("--supervised", type=_fd_pair, help=argparse.SUPPRESS)

    group = serve.add_argument_group("protocols and TLS")
    group.add_argument(
        "--http2",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="HTTP/2 by ALPN over TLS and h2c in cleartext (default: on)",
    )
    group.add_argument(
        "--certfile", "--ssl-certfile", metavar="FILE", help="PEM certificate chain: serve HTTPS"
    )
    group.add_argument(
        "--keyfile", "--ssl-keyfile", metavar="FILE", help="PEM private key (if not in --certfile)"
    )

    group = serve.add_argument_group("limits (defaults from hyperpy.ServerLimits)")
    _add_limit_options(group)

    group = serve.add_argument_group("logging")
    group.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a line per request on stdout (default: on)",
    )
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, help="level of the other logs, on stderr (default: info)"
    )
    group.add_argument(
        "--log-config",
        metavar="FILE",
        help="logging configuration replacing the defaults: dictConfig JSON or YAML, "
        "or fileConfig .ini/.conf",
    )

    group = serve.add_argument_group("behind a proxy")
    group.add_argument(
        "--proxy-headers",
        action="store_true",
        help="apply Forwarded / X-Forwarded-* from trusted proxies",
    )
    group.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trusted proxies: comma-separated addresses or networks, '*', 'unix' "
        "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    return serve


def _add_limit_options(group: Any) -> None:
    defaults = ServerLimits()
    hints = typing.get_type_hints(ServerLimits)
    for field in dataclasses.fields(ServerLimits):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        hint = hints[field.name]
        help_text = _LIMIT_HELP.get(field.name, f"ServerLimits.{field.name}")
        if hint is int:
            kind: Any = _count
            metavar = "N"
            help_text += f" (default: {default})"
        elif hint is float or float in typing.get_args(hint):
            optional = type(None) in typing.get_args(hint)
            kind = _limit_seconds if optional else _seconds
            metavar = "S"
            no_limit = "; 'none': no limit" if optional else ""
            help_text += f" (default: {default}{no_limit})"
        else:
            continue  # a kind of value the command line does not know how to spell
        names = [flag, *_LIMIT_ALIASES.get(field.name, [])]
        group.add_argument(
            *names, dest=f"limit_{field.name}", type=kind, metavar=metavar, help=help_text
        )


# -- value parsers ----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {port}")
    return port


def _fd(text: str) -> int:
    try:
        fd = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a file descriptor: {text!r}") from None
    if fd < 0:
        raise argparse.ArgumentTypeError(f"not a file descriptor: {fd}")
    return fd


def _fd_pair(text: str) -> tuple[int, int]:
    first, _, second = text.partition(":")
    return _fd(first), _fd(second)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, 0 or more: {text}")
    return value


NO_LIMIT = "none"


def _limit_seconds(text: str) -> float | str:
    """Seconds, or ``NO_LIMIT`` (kept apart from None, which means "not given")."""
    if text.lower() in ("none", "off"):
        return NO_LIMIT
    value = _seconds(text)
    if value == 0:
        # A zero limit would end every connection at once: surely not what is meant.
        raise argparse.ArgumentTypeError("must be more than 0 seconds ('none': no limit)")
    return value


# -- checking -------------------------------------------------------------------------


def to_config(args: argparse.Namespace, environ: Any = os.environ) -> ServeConfig:
    """The checked ``ServeConfig`` for parsed ``serve`` arguments; UsageError if they clash."""
    host, port, uds, fd = args.host, args.port, args.uds, args.fd
    if args.bind is not None:
        if any(value is not None for value in (host, port, uds, fd)):
            raise UsageError("give --bind or --host/--port/--uds/--fd, not both")
        host, port, uds, fd = _parse_bind(args.bind)
    if uds is not None and fd is not None:
        raise UsageError("give --uds or --fd, not both")
    if (uds is not None or fd is not None) and (host is not None or port is not None):
        raise UsageError("--uds and --fd replace --host/--port: give one or the other")
    if args.keyfile and not args.certfile:
        raise UsageError("--keyfile needs --certfile")

    workers = args.workers
    if workers is None and environ.get("WEB_CONCURRENCY"):
        try:
            workers = _count(environ["WEB_CONCURRENCY"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"WEB_CONCURRENCY: {exc}") from None
    if args.reload and args.workers is not None:
        raise UsageError("--reload runs a single worker: it cannot be combined with --workers")
    if args.reload:
        workers = None  # WEB_CONCURRENCY is for production, not for --reload
    if (workers is not None or args.reload) and os.name != "posix":
        raise UsageError("--workers and --reload need a POSIX system")
    if args.reload_dir and not args.reload:
        raise UsageError("--reload-dir needs --reload")

    overrides: dict[str, Any] = {}
    for field in dataclasses.fields(ServerLimits):
        value = getattr(args, f"limit_{field.name}", None)
        if value is not None:
            overrides[field.name] = None if value == NO_LIMIT else value
    try:
        limits = dataclasses.replace(ServerLimits(), **overrides)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid limit: {exc}") from None

    allowed = args.forwarded_allow_ips
    if allowed is None:
        allowed = environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"

    return ServeConfig(
        app=args.app,
        factory=args.factory,
        interface=args.interface,
        sync=args.sync,
        host=host if host is not None else DEFAULT_HOST,
        port=port if port is not None else DEFAULT_PORT,
        uds=uds,
        fd=fd,
        backlog=args.backlog,
        workers=workers,
        reload=args.reload,
        reload_dirs=tuple(args.reload_dir) or (os.getcwd(),),
        graceful_timeout=args.graceful_timeout,
        certfile=args.certfile,
        keyfile=args.keyfile,
        http2=args.http2,
        limits=limits,
        access_log=args.access_log,
        log_level=args.log_level,
        log_config=args.log_config,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=allowed,
        root_path=args.root_path,
        lifespan=args.lifespan,
        supervised=args.supervised,
    )


def _parse_bind(text: str) -> tuple[str | None, int | None, str | None, int | None]:
    """``--bind``: (host, port, uds, fd), as gunicorn and hypercorn spell it."""
    if text.startswith("unix:"):
        path = text[len("unix:") :]
        if not path:
            raise UsageError("--bind unix: needs a path")
        return None, None, path, None
    if text.startswith("fd://"):
        try:
            return None, None, None, _fd(text[len("fd://") :])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--bind: {exc}") from None
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(DEFAULT_PORT)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:8000
    try:
        port = _port(port_text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--bind {text!r}: {exc}") from None
    return host or DEFAULT_HOST, port, None, None
