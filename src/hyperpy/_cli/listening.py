"""The listening socket: bound by a supervisor for its workers, and how to name it."""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from .._backends._sockets import adopted_socket, bound_socket, bound_unix_socket
from .serve_args import ServeConfig


def bind(config: ServeConfig) -> socket.socket:
    """The socket ``config`` asks for, listening: on ``--uds``, the inherited ``--fd``,
    or ``--host``/``--port``. OSError if it cannot be had."""
    if config.fd is not None:
        return adopted_socket(config.fd, config.backlog)
    if config.uds is not None:
        return bound_unix_socket(config.uds, config.backlog)
    return bound_socket(config.host, config.port, config.backlog)


def where(address: object, *, tls: bool) -> str:
    """A URL for a TCP address (``getsockname``'s), ``unix:PATH`` for a Unix socket's."""
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        host, port = str(address[0]), address[1]
        if port or not (host.startswith("/") or host.startswith("\0") or not host):
            host = f"[{host}]" if ":" in host else host
            return f"{'https' if tls else 'http'}://{host}:{port}"
        address = host
    if isinstance(address, bytes):
        address = address.decode(errors="replace")
    return f"unix:{address}"


def remove_socket_file(path: str) -> None:
    """Remove the Unix socket file a server bound (nothing else that may be there)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
