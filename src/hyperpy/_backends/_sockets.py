"""Socket set-up that both backends share (plain stdlib, no IO waits)."""

from __future__ import annotations

import os
import select
import socket
import stat
from typing import Any

from .base import Address


def to_address(raw: Any) -> Address:
    """(host, port) from what getsockname/getpeername returned."""
    return (str(raw[0]), int(raw[1])) if isinstance(raw, tuple) else (str(raw), 0)


# The kernel's send buffer for a server's connections. Left to autotuning, it grows
# to megabytes on a fast link, all of it handed over ahead of need: a stream reset
# or a shutdown is then overtaken by that much already queued. 256 KiB (the kernel
# doubles it) still fills a gigabit path with 4 ms of round trip.
SERVER_SEND_BUFFER = 256 * 1024


def tune_accepted(sock: socket.socket) -> None:
    """Options for a connection a server accepted: no Nagle delay, a bounded send
    buffer (see SERVER_SEND_BUFFER)."""
    try:
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SERVER_SEND_BUFFER)
    except OSError:
        pass  # reset before we got to it: the first IO will say so


def bound_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``, IPv6 sockets v6-only.

    Resolving ``host`` may block (DNS): the trio backend runs this in a thread.
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, sockaddr = info[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def adopted_socket(fd: int, backlog: int) -> socket.socket:
    """The listening socket behind an inherited descriptor (TCP or Unix)."""
    sock = socket.socket(fileno=fd)
    if sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError(f"file descriptor {fd} is not a stream socket")
    sock.listen(backlog)  # harmless if it listens already; makes sure it does
    return sock


def bound_unix_socket(path: str, backlog: int) -> socket.socket:
    """A listening Unix domain socket at ``path``; a stale socket file left there by
    a server that died is replaced (any other file is an error)."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def poll_readable(fd: int) -> bool:
    """True if ``fd`` has bytes, EOF or an error waiting (checked without waiting)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))
