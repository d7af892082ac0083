"""The blocking backend: sockets, poll and threads behind the same names as trio's.

Sockets are non-blocking and every wait is a ``poll`` with that call's own
deadline, so a reader thread and writer threads can share one connection, each
with its own timeout. TLS runs through ``ssl.MemoryBIO`` so the TLS state is
only touched under a lock and never while blocked on the network: OpenSSL
objects must not be used by two threads at once.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

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

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_POLLOUT = select.POLLOUT | select.POLLHUP | select.POLLERR


def _wait(fd: int, events: int, deadline: float | None) -> bool:
    """Wait until ``fd`` is ready for ``events``; False when the deadline passed."""
    poller = select.poll()
    poller.register(fd, events)
    while True:
        if deadline is None:
            ms = None
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ms = max(1, int(remaining * 1000 + 0.999))
        if poller.poll(ms):
            return True


class _Socket:
    """A non-blocking socket with deadline-bounded recv and sendall.

    ``shutdown`` from another thread wakes every thread polling it; the file
    descriptor is closed only once no thread is polling, because a closed fd
    number is reused at once (by the next socket) and a poll on it would then
    wait on somebody else's connection, possibly forever.
    """

    __slots__ = ("_lock", "_more", "_waiters", "closed", "fd", "sock")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.closed = False
        self._lock = threading.Lock()
        self._waiters = 0
        # Whether the last recv filled its buffer, so more bytes are likely waiting.
        self._more = False

    def _wait(self, events: int, deadline: float | None) -> bool:
        if not self.begin_wait():
            return True  # the caller's next call sees ``closed``
        try:
            return _wait(self.fd, events, deadline)
        finally:
            self.end_wait()

    def begin_wait(self) -> bool:
        """Count as a waiter on the descriptor (it stays open meanwhile); False if
        the socket is closed already."""
        with self._lock:
            if self.closed:
                return False
            self._waiters += 1
            return True

    def end_wait(self) -> None:
        with self._lock:
            self._waiters -= 1
            last = self.closed and not self._waiters
        if last:
            self.sock.close()

    def recv(self, max_bytes: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        # Poll before the first recv unless bytes are likely buffered already: after a
        # request the answer is rarely there yet, and a recv that fails with EAGAIN
        # would be a third syscall per read.
        ready = self._more
        while True:
            if not ready:
                if self.closed:
                    return b""
                if not self._wait(_POLLIN, deadline):
                    raise ReadTimeout(f"no data from the peer within {timeout} s")
            try:
                data = self.sock.recv(max_bytes)
            except (BlockingIOError, InterruptedError):
                ready = False
                continue
            except OSError as exc:
                if self.closed:
                    return b""
                raise ReadError(f"receive failed: {exc!r}") from exc
            self._more = len(data) == max_bytes
            return data

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        view = memoryview(data)
        while view:
            if self.closed:
                raise WriteError("send failed: the connection was closed")
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                if not self._wait(_POLLOUT, deadline):
                    raise WriteTimeout(f"the peer did not take our data within {timeout} s")
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                raise WriteError(f"send failed: {exc!r}") from exc
            view = view[sent:]

    def shutdown(self) -> None:
        """Wake any thread blocked on this socket, then close it (see class doc)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            if self._waiters:
                return  # the last poller closes it
        self.sock.close()


class _TLS:
    """TLS over a ``_Socket`` through memory BIOs, safe for one reader + many writers."""

    def __init__(
        self, raw: _Socket, context: ssl.SSLContext, server_side: bool, hostname: str | None
    ) -> None:
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side, hostname)
        self.state_lock = threading.Lock()  # guards self.obj; never held while blocked
        self.send_lock = threading.Lock()  # keeps ciphertext in the order it was made

    def _flush(self, timeout: float | None) -> None:
        with self.send_lock:
            with self.state_lock:
                data = self.outgoing.read()
            if data:
                self.raw.sendall(data, timeout)

    def handshake(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self._flush(timeout)
                return
            except ssl.SSLWantReadError:
                self._flush(timeout)
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                data = self.raw.recv(65536, left)
                if not data:
                    self.incoming.write_eof()
                else:
                    self.incoming.write(data)

    def recv(self, max_bytes: int, timeout: float | None) -> bytes:
        while True:
            with self.state_lock:
                try:
                    data = self.obj.read(max_bytes)
                except ssl.SSLWantReadError:
                    data = None
                except ssl.SSLZeroReturnError:
                    return b""
                except ssl.SSLError as exc:
                    # A peer that closes without close_notify ends the stream, as in trio's
                    # https_compatible mode.
                    if "EOF" in str(exc) or "UNEXPECTED_EOF" in str(exc):
                        return b""
                    raise ReadError(f"TLS receive failed: {exc}") from exc
                pending_out = self.outgoing.pending
            # TLS output made by reading (e.g. a KeyUpdate answer). If a writer holds
            # the send lock it sends these bytes after its own (see sendall); waiting
            # for it here could deadlock with a peer that waits for us to read.
            if pending_out and self.send_lock.acquire(blocking=False):
                try:
                    with self.state_lock:
                        out = self.outgoing.read()
                    if out:
                        self.raw.sendall(out, timeout)
                finally:
                    self.send_lock.release()
            if data is not None:
                return data
            raw = self.raw.recv(65536, timeout)
            with self.state_lock:
                if raw:
                    self.incoming.write(raw)
                else:
                    self.incoming.write_eof()

    def sendall(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        with self.send_lock:
            with self.state_lock:
                try:
                    self.obj.write(data)
                except ssl.SSLError as exc:
                    raise WriteError(f"TLS send failed: {exc}") from exc
                out = self.outgoing.read()
            while out:
                self.raw.sendall(out, timeout)
                with self.state_lock:  # output the reader made meanwhile, in order
                    out = self.outgoing.read()


class SyncSocketStream:
    """A connected TCP stream, maybe TLS, over blocking threads (implements
    ``base.SyncStream``)."""

    __slots__ = ("_io", "_peername", "_raw", "_tls")

    def __init__(
        self, raw: _Socket, tls: _TLS | None = None, peername: Address | None = None
    ) -> None:
        self._raw = raw
        self._tls = tls
        self._io: _Socket | _TLS = tls if tls is not None else raw
        if peername is None:
            try:
                peername = to_address(raw.sock.getpeername())
            except OSError:  # the peer reset the connection before we asked (ENOTCONN)
                peername = None
        self._peername = peername

    def receive(self, max_bytes: int = 65536, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at end of stream."""
        return self._io.recv(max_bytes, timeout)

    def send_all(self, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        """Send every byte, or raise: a partial write is never reported as done."""
        self._io.sendall(data, timeout)

    def start_tls(
        self,
        context: ssl.SSLContext,
        *,
        server_hostname: str | None,
        server_side: bool,
        timeout: float | None,
        error: type[Exception] = ConnectError,
    ) -> SyncSocketStream:
        """Wrap in TLS and complete the handshake within ``timeout``."""
        try:
            tls = _TLS(self._raw, context, server_side, server_hostname)
            tls.handshake(timeout)
        except ReadTimeout:
            self._raw.shutdown()
            raise ConnectTimeout(f"TLS handshake took longer than {timeout} s") from None
        except (ssl.SSLError, ReadError, WriteError, WriteTimeout, OSError) as exc:
            self._raw.shutdown()
            who = f" with {server_hostname}" if server_hostname else ""
            raise error(f"TLS handshake{who} failed: {exc}") from exc
        return SyncSocketStream(self._raw, tls, self._peername)

    @property
    def alpn(self) -> str | None:
        return self._tls.obj.selected_alpn_protocol() if self._tls is not None else None

    @property
    def is_tls(self) -> bool:
        return self._tls is not None

    @property
    def peername(self) -> Address | None:
        return self._peername

    @property
    def sockname(self) -> Address:
        return to_address(self._raw.sock.getsockname())

    def is_readable(self) -> bool:
        """True if bytes or EOF wait unread (a receive would not wait), TLS-buffered
        bytes included: on an idle connection, it is not reusable."""
        tls = self._tls
        if tls is not None:
            with tls.state_lock:
                if tls.obj.pending() or tls.incoming.pending:
                    return True
        return self._raw.closed or poll_readable(self._raw.fd)

    def watch(self) -> int | None:
        """For a parker's selector: keep the socket open while it is watched, and
        return its descriptor (None if it is closed). Closing the stream meanwhile
        makes the descriptor readable; end with ``unwatch``."""
        return self._raw.fd if self._raw.begin_wait() else None

    def unwatch(self) -> None:
        self._raw.end_wait()

    def send_eof(self) -> None:
        """Half-close: the peer reads EOF after our last byte; we can still receive."""
        try:
            self._raw.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Close at once, waking any thread blocked on this connection."""
        if not self._raw.closed:
            self._raw.shutdown()

    def close_now(self) -> None:
        """The same as ``close``: it never waits."""
        self.close()

    def close_lingering(self, linger: float = 2.0) -> None:
        """Half-close and drain what the peer still sends, then close (avoids a RST
        that could destroy response bytes the peer has not read yet)."""
        raw = self._raw
        if raw.closed:
            return
        try:
            raw.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + linger
            drained = 0
            while drained < 1 << 20:
                data = raw.recv(65536, max(0.0, deadline - time.monotonic()))
                if not data:
                    break
                drained += len(data)
        except (OSError, ReadError, ReadTimeout):
            pass
        raw.shutdown()


class SyncSocketNetwork:
    """The OS's TCP network, with blocking sockets (implements ``base.SyncNetwork``)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None) -> SyncSocketStream:
        """Open a TCP connection within ``timeout``."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {host}:{port} took longer than {timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return SyncSocketStream(_Socket(sock))

    def connect_unix(self, path: str, timeout: float | None) -> SyncSocketStream:
        """Open a connection to the Unix domain socket at ``path`` within ``timeout``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError:
            sock.close()
            raise ConnectTimeout(f"connecting to {path} took longer than {timeout} s") from None
        except OSError as exc:
            sock.close()
            raise ConnectError(f"cannot connect to {path}: {exc}") from exc
        return SyncSocketStream(_Socket(sock))

    def listen_tcp(self, host: str, port: int, backlog: int = 1024) -> SyncSocketListener:
        """Listen on ``host``:``port`` (0: any free port)."""
        return SyncSocketListener(bound_socket(host, port, backlog))

    def listen_fd(self, fd: int, backlog: int = 1024) -> SyncSocketListener:
        """Serve on the listening socket ``fd`` (inherited: a supervisor bound it)."""
        return SyncSocketListener(adopted_socket(fd, backlog))

    def listen_unix(self, path: str, backlog: int = 1024) -> SyncSocketListener:
        """Listen on a Unix domain socket at ``path``."""
        return SyncSocketListener(bound_unix_socket(path, backlog))


class SyncSocketListener:
    """A listening TCP socket whose ``accept`` wakes when the listener is closed
    (implements ``base.SyncListener``)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._accepting = 0
        self._lock = threading.Lock()

    @property
    def address(self) -> Address:
        return to_address(self._sock.getsockname())

    def accept(self) -> SyncSocketStream | None:
        """The next connection, or None once the listener is closed."""
        with self._lock:
            if self._closed:
                return None
            self._accepting += 1
        try:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            while not self._closed:
                try:
                    conn, _ = self._sock.accept()
                except BlockingIOError:
                    poller.poll()
                    continue
                except OSError:
                    if self._closed:
                        return None
                    # Out of file descriptors, or a connection reset before accept: back off.
                    time.sleep(0.01)
                    continue
                tune_accepted(conn)
                return SyncSocketStream(_Socket(conn))
            return None
        finally:
            with self._lock:
                self._accepting -= 1
                last = self._closed and not self._accepting
            if last:
                self._release()

    def close(self) -> None:
        """Stop listening; a thread in ``accept`` wakes and returns None."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.write(self._wake_w, b"x")
            if self._accepting:
                return  # the last accepting thread releases the descriptors
        self._release()

    def _release(self) -> None:
        # Only once nobody polls them: a closed descriptor number is reused at once.
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class SyncTaskStatus(Generic[T]):
    """What ``SyncTaskGroup.start`` hands a task so it can report it has started."""

    IGNORED: Any = None

    def __init__(self) -> None:
        self.value: Any = None
        self.event = threading.Event()

    def started(self, value: Any = None) -> None:
        self.value = value
        self.event.set()


class _Ignored(SyncTaskStatus[Any]):
    def started(self, value: Any = None) -> None:
        pass


SyncTaskStatus.IGNORED = _Ignored()


class SyncTaskGroup:
    """Threads started here are joined before the block ends; the first error is re-raised.

    ``cancel`` only raises a flag: threads cannot be interrupted, so owners wake
    blocked threads by closing the sockets they wait on.
    """

    def __init__(self) -> None:
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self.cancelled = False

    def __enter__(self) -> SyncTaskGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        while True:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                break
            for thread in threads:
                thread.join()
        if self._errors and exc is None:
            raise self._errors[0]
        return None

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as exc:  # recorded for __exit__, like a nursery
            self._errors.append(exc)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _spawn(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(fn, args, kwargs),
            daemon=True,
            name=getattr(fn, "__name__", "task"),
        )
        # Started under the lock: ``__exit__`` in another thread must never see
        # (and join) a thread that is registered but not yet started.
        with self._lock:
            self._threads.add(thread)
            thread.start()

    def start_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._spawn(fn, args, {})

    def start(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args, task_status=...)`` in a thread; return what it reports as started."""
        status: SyncTaskStatus[Any] = SyncTaskStatus()
        done = threading.Event()

        def runner() -> None:
            try:
                fn(*args, task_status=status)
            finally:
                done.set()
                status.event.set()

        self._spawn(runner, (), {})
        status.event.wait()
        if not done.is_set() or status.value is not None:
            return status.value
        if self._errors:
            raise self._errors.pop()
        return status.value

    def cancel(self) -> None:
        self.cancelled = True


class SyncEvent:
    """A resettable wake-up flag: ``set`` wakes every waiter until ``clear``."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until set; False if ``timeout`` passed first."""
        return self._event.wait(timeout)


class SyncLock:
    """A mutual-exclusion lock (serialises writers)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting."""
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()


class SyncSemaphore:
    """Bounds how many holders run at once."""

    __slots__ = ("_sem",)

    def __init__(self, value: int) -> None:
        self._sem = threading.Semaphore(value)

    def __enter__(self) -> None:
        self._sem.acquire()

    def __exit__(self, *exc: object) -> None:
        self._sem.release()

    def acquire(self) -> None:
        self._sem.acquire()

    def try_acquire(self) -> bool:
        """Take a unit if one is free, without waiting."""
        return self._sem.acquire(blocking=False)

    def release(self) -> None:
        self._sem.release()


class SyncShield:
    """No-op twin of the trio shield: blocking calls are bounded by their own timeouts."""

    __slots__ = ()

    def __init__(self, timeout: float) -> None:
        pass

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: Any) -> None:
        pass


class SyncCancelScope:
    """Twin of trio's cancel scope: a thread cannot be interrupted, so ``cancel``
    only marks the block; its work ends at its next step that can fail (IO on a
    reset stream, say)."""

    __slots__ = ("cancel_called",)

    def __init__(self) -> None:
        self.cancel_called = False

    def __enter__(self) -> SyncCancelScope:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def cancel(self) -> None:
        self.cancel_called = True


class SyncClock:
    """The backend's monotonic clock."""

    now = staticmethod(time.monotonic)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)

    @staticmethod
    def checkpoint() -> None:
        pass


# A lock is a lock among threads: the guard for bookkeeping blocks (a no-op in trio,
# where such blocks cannot be interleaved) is the same class as the writers' lock.
SyncStateLock = SyncLock
