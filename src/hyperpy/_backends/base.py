"""The backend contract: what a byte stream, a listener and a network must offer.

Connection code in ``_async`` (and its generated ``_sync`` twin) types its IO
against these Protocols only, so any network that honours them can carry the
whole HTTP/1.1 and HTTP/2 engine: the OS's sockets (``_trio``, ``_sync``) or
the in-process memory network of ``hyperpy.testing``.

The rules every implementation keeps:

- every IO call takes its own ``timeout`` (seconds, or None to wait forever)
  and raises hyperpy's typed errors (``ReadTimeout``, ``WriteError``, ...),
  never OS or library exceptions;
- ``receive`` returns ``b""`` only at the end of the stream (the peer's FIN);
  a reset is a ``ReadError``;
- ``send_all`` sends every byte or raises: a partial write is never reported
  as done;
- closing wakes every caller blocked on the stream (another task or thread).
"""

from __future__ import annotations

import ssl
from typing import Protocol

Address = tuple[str, int]


class AsyncStream(Protocol):
    """A connected byte stream (TCP, maybe TLS) with per-call deadlines (trio world)."""

    async def receive(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at end of stream."""
        ...

    async def send_all(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        """Send every byte, or raise."""
        ...

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None,
        server_side: bool,
        timeout: float | None,
        error: type[Exception] = ...,
    ) -> AsyncStream:
        """Wrap in TLS and complete the handshake within ``timeout``; a failed
        handshake raises ``error`` (ConnectError by default)."""
        ...

    @property
    def alpn(self) -> str | None:
        """The protocol chosen by ALPN, if TLS negotiated one."""
        ...

    @property
    def is_tls(self) -> bool: ...

    @property
    def peername(self) -> Address | None:
        """The peer's address, recorded when the connection was made (None if the
        peer had already gone): asking later cannot fail."""
        ...

    @property
    def sockname(self) -> Address: ...

    def is_readable(self) -> bool:
        """True if bytes or EOF wait unread: on an idle connection, it is not reusable."""
        ...

    def send_eof(self) -> None:
        """Half-close: the peer reads EOF after our last byte; we can still receive."""
        ...

    async def aclose(self) -> None:
        """Close at once, waking anyone blocked on the stream."""
        ...

    def close_now(self) -> None:
        """Close at once without waiting for anything (no TLS goodbye): for another
        task or thread, whose receive on it then ends (b"" or ReadError)."""
        ...

    async def close_lingering(self, linger: float = 2.0) -> None:
        """Half-close, read and discard what the peer still sends (for up to
        ``linger`` seconds), then close.

        Closing with unread input makes TCP send a reset, which can destroy
        response bytes the peer has not read yet; lingering avoids that.
        """
        ...


class AsyncListener(Protocol):
    """A listening endpoint that hands out connected streams (trio world)."""

    @property
    def address(self) -> Address:
        """The bound address (the real port when 0 was asked for)."""
        ...

    async def accept(self) -> AsyncStream | None:
        """The next connection, or None once the listener is closed."""
        ...

    async def aclose(self) -> None:
        """Stop listening; a caller blocked in ``accept`` wakes with None."""
        ...


class AsyncNetwork(Protocol):
    """Where connections come from: the OS's sockets, or an in-process network."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None) -> AsyncStream:
        """Open a connection within ``timeout`` (ConnectError, ConnectTimeout)."""
        ...

    async def connect_unix(self, path: str, timeout: float | None) -> AsyncStream:
        """Open a connection to a Unix domain socket (ConnectError, ConnectTimeout)."""
        ...

    async def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> AsyncListener:
        """Listen on ``host``:``port`` (0: any free port)."""
        ...

    async def listen_unix(self, path: str, backlog: int = 1024) -> AsyncListener:
        """Listen on a Unix domain socket at ``path`` (OSError if it cannot)."""
        ...

    async def listen_fd(self, fd: int, backlog: int = 1024) -> AsyncListener:
        """Serve on an inherited listening socket (OSError if it cannot)."""
        ...


class SyncStream(Protocol):
    """A connected byte stream (TCP, maybe TLS) with per-call deadlines (blocking world)."""

    def receive(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at end of stream."""
        ...

    def send_all(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        """Send every byte, or raise."""
        ...

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None,
        server_side: bool,
        timeout: float | None,
        error: type[Exception] = ...,
    ) -> SyncStream:
        """Wrap in TLS and complete the handshake within ``timeout``."""
        ...

    @property
    def alpn(self) -> str | None: ...

    @property
    def is_tls(self) -> bool: ...

    @property
    def peername(self) -> Address | None: ...

    @property
    def sockname(self) -> Address: ...

    def is_readable(self) -> bool: ...

    def send_eof(self) -> None: ...

    def close(self) -> None:
        """Close at once, waking any thread blocked on the stream."""
        ...

    def close_now(self) -> None:
        """The same as ``close`` (see AsyncStream.close_now)."""
        ...

    def close_lingering(self, linger: float = 2.0) -> None:
        """Half-close, drain what the peer still sends, then close (see AsyncStream)."""
        ...


class SyncListener(Protocol):
    """A listening endpoint that hands out connected streams (blocking world)."""

    @property
    def address(self) -> Address: ...

    def accept(self) -> SyncStream | None:
        """The next connection, or None once the listener is closed."""
        ...

    def close(self) -> None:
        """Stop listening; a thread blocked in ``accept`` wakes with None."""
        ...


class SyncNetwork(Protocol):
    """Where connections come from (blocking world)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None) -> SyncStream: ...

    def connect_unix(self, path: str, timeout: float | None) -> SyncStream: ...

    def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> SyncListener: ...

    def listen_unix(self, path: str, backlog: int = 1024) -> SyncListener: ...

    def listen_fd(self, fd: int, backlog: int = 1024) -> SyncListener: ...
