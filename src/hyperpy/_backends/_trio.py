"""The trio backend: the only place the async world touches trio.

Every IO method takes its own ``timeout`` (seconds or None) and raises hyperpy's
typed errors; trio's ``Cancelled`` is never caught here, so callers' cancel
scopes work at every await.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import trio

from .._exceptions import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from ._sockets import (
    adopted_socket,
    bound_socket,
    bound_unix_socket,
    poll_readable,
    to_address,
    tune_accepted,
)
from .base import Address

T = TypeVar("T")

_STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class AsyncSocketStream:
    """A connected TCP stream, maybe TLS, over trio (implements ``base.AsyncStream``)."""

    __slots__ = ("_peername", "_raw", "_receive_some", "_send", "_stream")

    def __init__(
        self,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        peername: Address | None = None,
    ) -> None:
        self._stream = stream
        raw = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        self._raw: trio.SocketStream = raw
        self._peername = peername if peername is not None else _peer(raw.socket)
        # Cleartext goes straight to trio's socket: SocketStream adds two context
        # managers per call (one generator-based) to guard against concurrent use
        # and translate errors, which hyperpy's connections need neither of (one
        # reader and one writer each; errors are translated below).
        plain = stream is raw
        self._receive_some = raw.socket.recv if plain else stream.receive_some
        self._send = self._send_plain if plain else stream.send_all

    async def _send_plain(self, data: bytes | bytearray | memoryview) -> None:
        sock = self._raw.socket
        with memoryview(data) as view:
            total = len(view)
            if not total:
                await trio.lowlevel.checkpoint()
                return
            sent = await sock.send(view)
            while sent < total:
                sent += await sock.send(view[sent:])

    async def receive(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at end of stream."""
        try:
            if timeout is None:
                return bytes(await self._receive_some(max_bytes))
            # A bare cancel scope, not fail_after: that one is a generator-based
            # context manager, and this runs for every read.
            scope = trio.CancelScope(deadline=trio.current_time() + timeout)
            with scope:
                data = await self._receive_some(max_bytes)
            if scope.cancelled_caught:
                raise ReadTimeout(f"no data from the peer within {timeout} s")
            return bytes(data)
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            raise ReadError(f"receive failed: {exc!r}") from exc

    async def send_all(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        """Send every byte, or raise: a partial write is never reported as done."""
        try:
            if timeout is None:
                await self._send(data)
                return
            scope = trio.CancelScope(deadline=trio.current_time() + timeout)
            with scope:
                await self._send(data)
            if scope.cancelled_caught:
                raise WriteTimeout(f"the peer did not take our data within {timeout} s")
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            raise WriteError(f"send failed: {exc!r}") from exc

    async def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None,
        server_side: bool,
        timeout: float | None,
        error: type[Exception] = ConnectError,
    ) -> AsyncSocketStream:
        """Wrap in TLS and complete the handshake within ``timeout``."""
        assert isinstance(self._stream, trio.SocketStream)
        tls = trio.SSLStream(
            self._stream,
            context,
            server_hostname=server_hostname,
            server_side=server_side,
            https_compatible=True,
        )
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                await tls.do_handshake()
        except trio.TooSlowError:
            await self._raw.aclose()
            raise ConnectTimeout(f"TLS handshake took longer than {timeout} s") from None
        except (*_STREAM_ERRORS, ssl.SSLError) as exc:
            await self._raw.aclose()
            who = f" with {server_hostname}" if server_hostname else ""
            # trio wraps the SSLError (e.g. "certificate verify failed") in a bare
            # BrokenResourceError: report the underlying reason.
            reason = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else None
            raise error(f"TLS handshake{who} failed: {reason or exc!r}") from exc
        return AsyncSocketStream(tls, self._peername)

    @property
    def alpn(self) -> str | None:
        """The protocol chosen by ALPN, if TLS negotiated one."""
        if isinstance(self._stream, trio.SSLStream):
            protocol: str | None = self._stream.selected_alpn_protocol()
            return protocol
        return None

    @property
    def is_tls(self) -> bool:
        return isinstance(self._stream, trio.SSLStream)

    @property
    def peername(self) -> Address | None:
        return self._peername

    @property
    def sockname(self) -> Address:
        return to_address(self._raw.socket.getsockname())

    def is_readable(self) -> bool:
        """True if bytes or EOF wait unread: on an idle connection, it is not reusable."""
        return poll_readable(self._raw.socket.fileno())

    def send_eof(self) -> None:
        """Half-close: the peer reads EOF after our last byte; we can still receive."""
        try:
            self._raw.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    async def aclose(self) -> None:
        """Close at once; TLS close_notify is attempted briefly, never waited on long."""
        with trio.move_on_after(0.5) as scope:
            scope.shield = True
            try:
                await self._stream.aclose()
            except (*_STREAM_ERRORS, ssl.SSLError):
                pass
        if scope.cancelled_caught:
            await self._raw.aclose()

    def close_now(self) -> None:
        """Close the socket at once, without a checkpoint: a task blocked reading it
        wakes with ReadError (no TLS close_notify is sent)."""
        self._raw.socket.close()  # trio's close notifies the socket's waiters first

    async def close_lingering(self, linger: float = 2.0) -> None:
        """Half-close and drain what the peer still sends, then close.

        Closing a socket with unread input makes the kernel send RST, which can
        destroy response bytes the peer has not read yet; lingering avoids that.
        """
        sock = self._raw.socket
        with trio.move_on_after(linger) as scope:
            scope.shield = True
            try:
                sock.shutdown(socket.SHUT_WR)
                drained = 0
                while drained < 1 << 20:
                    data = await sock.recv(65536)
                    if not data:
                        break
                    drained += len(data)
            except (OSError, trio.ClosedResourceError):
                pass  # ClosedResourceError: another task (shutdown) closed it meanwhile
        await self._raw.aclose()


def _peer(sock: trio.socket.SocketType) -> Address | None:
    try:
        return to_address(sock.getpeername())
    except OSError:  # the peer reset the connection before we asked (ENOTCONN)
        return None


class AsyncSocketNetwork:
    """The OS's TCP network, through trio (implements ``base.AsyncNetwork``)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None) -> AsyncSocketStream:
        """Open a TCP connection (happy eyeballs over every address) within ``timeout``."""
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                stream = await trio.open_tcp_stream(host, port, happy_eyeballs_delay=0.25)
        except trio.TooSlowError:
            raise ConnectTimeout(
                f"connecting to {host}:{port} took longer than {timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return AsyncSocketStream(stream)

    async def connect_unix(self, path: str, timeout: float | None) -> AsyncSocketStream:
        """Open a connection to the Unix domain socket at ``path`` within ``timeout``."""
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                stream = await trio.open_unix_socket(path)
        except trio.TooSlowError:
            raise ConnectTimeout(f"connecting to {path} took longer than {timeout} s") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {path}: {exc}") from exc
        return AsyncSocketStream(stream)

    async def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> AsyncSocketListener:
        """Listen on ``host``:``port`` (0: any free port)."""
        sock = await trio.to_thread.run_sync(bound_socket, host, port, backlog)
        return AsyncSocketListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))

    async def listen_fd(self, fd: int, backlog: int = 1024) -> AsyncSocketListener:
        """Serve on the listening socket ``fd`` (inherited: a supervisor bound it)."""
        sock = adopted_socket(fd, backlog)
        return AsyncSocketListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))

    async def listen_unix(self, path: str, backlog: int = 1024) -> AsyncSocketListener:
        """Listen on a Unix domain socket at ``path``."""
        sock = bound_unix_socket(path, backlog)
        return AsyncSocketListener(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))


class AsyncSocketListener:
    """A listening TCP socket (implements ``base.AsyncListener``)."""

    def __init__(self, listener: trio.SocketListener) -> None:
        self._listener = listener

    @property
    def address(self) -> Address:
        return to_address(self._listener.socket.getsockname())

    async def accept(self) -> AsyncSocketStream | None:
        """The next connection, or None once the listener is closed."""
        try:
            stream = await self._listener.accept()
        except (trio.ClosedResourceError, OSError):
            return None
        tune_accepted(stream.socket)  # type: ignore[arg-type]
        return AsyncSocketStream(stream)

    async def aclose(self) -> None:
        await self._listener.aclose()


class AsyncTaskStatus(Generic[T]):
    """What ``AsyncTaskGroup.start`` hands a task so it can report it has started."""

    IGNORED: Any = trio.TASK_STATUS_IGNORED


class AsyncTaskGroup:
    """A nursery: tasks started here end before the block does."""

    def __init__(self) -> None:
        self._cm: Any = None
        self._nursery: trio.Nursery | None = None

    async def __aenter__(self) -> AsyncTaskGroup:
        self._cm = trio.open_nursery()
        self._nursery = await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            return bool(await self._cm.__aexit__(exc_type, exc, tb))
        finally:
            self._nursery = None

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None, "task group not entered"
        self._nursery.start_soon(fn, *args)

    async def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``fn(*args, task_status=...)`` and return what it reports as started."""
        assert self._nursery is not None, "task group not entered"
        return await self._nursery.start(fn, *args)

    def cancel(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()


class AsyncWorkerPool:
    """Runs server work; in trio every piece is a task of its own (cheap), so this
    only passes it to the task group. The blocking twin bounds its threads."""

    def __init__(self, spawn: Callable[..., None], max_workers: int) -> None:
        self._spawn = spawn

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._spawn(fn, *args)

    def close(self) -> None:
        pass


class AsyncParker:
    """The blocking world parks idle connections to free their threads; a trio task
    just waits, so nothing is ever parked here (``parks`` is False)."""

    parks = False

    def __init__(
        self,
        spawn: Callable[..., None],
        max_workers: int = 64,
        offload: Callable[..., None] | None = None,
    ) -> None:
        pass

    def park(
        self,
        stream: Any,
        deadline: float | None,
        start: Callable[..., None] | None,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> None:
        raise RuntimeError("trio connections wait in their task; they are never parked")

    def close(self) -> None:
        pass


class AsyncEvent:
    """A resettable wake-up flag: ``set`` wakes every waiter until ``clear``."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = trio.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until set; False if ``timeout`` passed first."""
        if timeout is None:
            await self._event.wait()
            return True
        with trio.move_on_after(timeout):
            await self._event.wait()
            return True
        return False


class AsyncLock:
    """A mutual-exclusion lock held across awaits (serialises writers)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = trio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


class AsyncSemaphore:
    """Bounds how many holders run at once."""

    __slots__ = ("_sem",)

    def __init__(self, value: int) -> None:
        self._sem = trio.Semaphore(value)

    async def __aenter__(self) -> None:
        await self._sem.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._sem.release()

    async def acquire(self) -> None:
        await self._sem.acquire()

    def try_acquire(self) -> bool:
        """Take a unit if one is free, without waiting."""
        try:
            self._sem.acquire_nowait()
        except trio.WouldBlock:
            return False
        return True

    def release(self) -> None:
        self._sem.release()


class AsyncShield:
    """Cleanup block that outside cancellation cannot interrupt, bounded by ``timeout``."""

    __slots__ = ("_scope",)

    def __init__(self, timeout: float) -> None:
        self._scope = trio.move_on_after(timeout)
        self._scope.shield = True

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)


class AsyncCancelScope:
    """A block whose work another task can cancel at once (a trio cancel scope);
    the block then ends quietly."""

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        self._scope = trio.CancelScope()

    def __enter__(self) -> AsyncCancelScope:
        self._scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)

    def cancel(self) -> None:
        self._scope.cancel()


class AsyncClock:
    """The backend's monotonic clock."""

    now = staticmethod(trio.current_time)

    @staticmethod
    async def sleep(seconds: float) -> None:
        await trio.sleep(seconds)

    @staticmethod
    async def checkpoint() -> None:
        """Let other tasks run (and cancellation be noticed)."""
        await trio.lowlevel.checkpoint()


class AsyncStateLock:
    """Guards shared bookkeeping for a block that never awaits.

    trio runs every task on one thread and only switches at awaits, so such a
    block is already atomic: this is a no-op, where the sync twin is a real lock.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass
